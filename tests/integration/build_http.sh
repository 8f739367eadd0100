#!/usr/bin/env bash
# kiln build: ADD <url> from a loopback HTTP server, --checksum, cache by content.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"
# count_steps TEXT: the number of steps that ran or came from the cache.
count_ran() { printf '%s\n' "$1" | grep -c '^#[0-9]* DONE' || true; }
command -v python3 >/dev/null || { echo "FAIL: python3 is needed for the HTTP server" >&2; exit 1; }

make_busybox
WWW="$T/www"
mkdir -p "$WWW"
echo "downloaded content" >"$WWW/file.txt"
port=$((20000 + RANDOM % 20000))
(cd "$WWW" && exec python3 -m http.server --bind 127.0.0.1 "$port") >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 50); do
	curl -fs "http://127.0.0.1:$port/file.txt" >/dev/null && break
	sleep 0.1
done
sum=$(sha256sum "$WWW/file.txt" | cut -d' ' -f1)
mkdir -p "$T/ctx"
cat >"$T/ctx/Dockerfile" <<DF
FROM busybox
ADD http://127.0.0.1:$port/file.txt /dl/
ADD --checksum=sha256:$sum http://127.0.0.1:$port/file.txt /dl2/f
RUN cat /dl/file.txt /dl2/f > /both
DF
run_kiln build -t dl "$T/ctx"
expect_eq "ADD <url>: $err" "$rc" 0
run_kiln run dl sh -c 'cat /both; stat -c %a /dl/file.txt'
expect_eq "both downloads, mode 0600" "$out" "$(printf 'downloaded content\ndownloaded content\n600')"

run_kiln build -t dl "$T/ctx"
expect_contains "unchanged download: the RUN is cached" "$(printf '%s\n' "$err" | grep -A1 'RUN cat')" "CACHED"

echo "new content" >"$WWW/file.txt"
run_kiln build -t dl "$T/ctx"
expect_eq "changed content: $err" "$rc" 0
# The download with --checksum is known by its checksum: cached; the other one is not.
expect_eq "only the download without a checksum reran" "$(printf '%s\n' "$err" | grep -A1 '^#[0-9]* http://' | grep -c CACHED || true)" 1
expect_eq "the ADD of the changed file reran" "$(printf '%s\n' "$err" | grep -A1 '\] ADD http://127.0.0.1:[0-9]*/file.txt /dl/' | grep -c CACHED || true)" 0
run_kiln run dl cat /dl/file.txt
expect_eq "the new content" "$out" "new content"

cat >"$T/ctx/Dockerfile" <<DF
FROM busybox
ADD --checksum=sha256:$sum http://127.0.0.1:$port/file.txt /f
DF
run_kiln build --no-cache "$T/ctx"
expect_eq "a checksum mismatch fails" "$rc" 1
expect_contains "says so" "$err" "checksum mismatch"

finish
