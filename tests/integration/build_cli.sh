#!/usr/bin/env bash
# kiln build: bind from a stage, ssh agent, --explain, rawjson progress, lint warnings, -f -.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"
# count_steps TEXT: the number of steps that ran or came from the cache.
count_ran() { printf '%s\n' "$1" | grep -c '^#[0-9]* DONE' || true; }
command -v python3 >/dev/null || { echo "FAIL: python3 is needed for a socket" >&2; exit 1; }

make_busybox
CTX="$T/ctx"
mkdir -p "$CTX"
echo v1 >"$CTX/a.txt"
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/agent.sock"
cat >"$CTX/Dockerfile" <<'DF'
FROM busybox AS tools
RUN mkdir /t && echo tool-output > /t/x
FROM busybox
COPY a.txt /a.txt
RUN --mount=type=bind,from=tools,source=/t,target=/mnt/t cat /mnt/t/x > /from-tools
RUN --mount=type=ssh sh -c 'test -S "$SSH_AUTH_SOCK" && echo ssh-ok > /ssh'
run echo lower
DF
run_kiln build --ssh "default=$T/agent.sock" -t c2 "$CTX"
expect_eq "build: $err" "$rc" 0
expect_contains "lint warnings at the start" "$err" "Dockerfile:7: warning ConsistentInstructionCasing"
run_kiln run c2 cat /from-tools /ssh
expect_eq "bind from a stage, ssh agent socket" "$out" "$(printf 'tool-output\nssh-ok')"

echo v2 >"$CTX/a.txt"
run_kiln build --explain --ssh "default=$T/agent.sock" "$CTX"
expect_eq "explain build: $err" "$rc" 0
expect_contains "explain names the changed file" "$err" "explain: [stage-1 2/5] COPY a.txt /a.txt: file /a.txt under"
expect_contains "explain names the parent" "$err" "cat /mnt/t/x > /from-tools: parent step changed"

run_kiln build --progress rawjson --ssh "default=$T/agent.sock" "$CTX"
expect_eq "rawjson build: $err" "$rc" 0
first=$(printf '%s\n' "$err" | grep '^{' | head -1)
expect_contains "one JSON event per line" "$first" '"event":"'
expect_eq "every event line is JSON" "$(printf '%s\n' "$err" | grep '^{' | python3 -c 'import json,sys; print(all(json.loads(l)["event"] for l in sys.stdin))')" "True"

run_kiln build --progress quiet --ssh "default=$T/agent.sock" "$CTX"
expect_eq "quiet build: $err" "$rc" 0
expect_contains "quiet prints the image id" "$out" "sha256:"

set +e
printf 'FROM busybox\nRUN echo from-stdin > /f\n' | "$KILN" build -f - -t fromstdin "$CTX" >"$T/stdout" 2>"$T/stderr"
rc=$?
set -e
expect_eq "-f -: $(cat "$T/stderr")" "$rc" 0
run_kiln run fromstdin cat /f
expect_eq "the stdin Dockerfile was built" "$out" "from-stdin"

run_kiln build --jobs 0 "$CTX"
expect_eq "--jobs 0 is a usage error" "$rc" 2
run_kiln build --progress fancy "$CTX"
expect_eq "an unknown progress mode is a usage error" "$rc" 2

run_kiln build --no-cache-filter tools --metadata-file "$T/md.json" --ssh "default=$T/agent.sock" -t c2 "$CTX"
expect_eq "--no-cache-filter build: $err" "$rc" 0
expect_eq "the filtered stage's RUN ran" "$(printf '%s\n' "$err" | grep -A1 '\[tools 2/2\]' | grep -c CACHED || true)" 0
expect_contains "other stages stay cached" "$(printf '%s\n' "$err" | grep -A1 'COPY a.txt')" "CACHED"
run_kiln inspect c2
expect_contains "metadata: the manifest digest names' image" "$out" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["containerimage.digest"])' "$T/md.json")"
expect_contains "metadata: the config digest" "$(cat "$T/md.json")" '"containerimage.config.digest": "sha256:'

run_kiln build --platform linux/s390x "$CTX"
[ "$(uname -m)" = s390x ] || { expect_eq "a foreign platform fails" "$rc" 1; expect_contains "clearly" "$err" "only the host platform can be built"; }

# ---- lint knows a base image's Env from the store (UndefinedVar) ----
printf 'FROM busybox\nENV FROM_BASE=1\n' | "$KILN" build -t withenv - >/dev/null 2>&1
run_kiln build - <<'DF'
FROM withenv
ENV X=$FROM_BASE Y=$NOT_SET
DF
expect_eq "child of withenv: $err" "$rc" 0
expect_contains "an unset variable is reported" "$err" "UndefinedVar: Usage of undefined variable '\$NOT_SET'"
expect_eq "the base's variable is known" "$(printf '%s\n' "$err" | grep -c 'FROM_BASE' || true)" 0

# ---- --explain knows a step after a line was inserted above it ----
mkdir -p "$T/ins"
printf 'FROM busybox\nRUN echo one\nRUN echo two\n' >"$T/ins/Dockerfile"
run_kiln build "$T/ins"
printf 'FROM busybox\nRUN echo zero\nRUN echo one\nRUN echo two\n' >"$T/ins/Dockerfile"
run_kiln build --explain "$T/ins"
expect_contains "a new step is new" "$(printf '%s\n' "$err" | grep 'explain:.*echo zero')" "no earlier build of this step"
expect_contains "a moved step is the same step, its parent changed" "$(printf '%s\n' "$err" | grep 'explain:.*echo one')" "parent step changed"

# ---- SOURCE_DATE_EPOCH as a build arg fixes the image's times: the same image id ----
run_kiln build --build-arg SOURCE_DATE_EPOCH=1000 --iidfile "$T/iid1" "$T/ins"
sleep 1.1
run_kiln build --build-arg SOURCE_DATE_EPOCH=1000 --iidfile "$T/iid2" "$T/ins"
expect_eq "the same image id a second later" "$(cat "$T/iid2")" "$(cat "$T/iid1")"
run_kiln build --iidfile "$T/iid3" "$T/ins"
checks=$((checks + 1))
[ "$(cat "$T/iid3")" != "$(cat "$T/iid1")" ] || fail "without SOURCE_DATE_EPOCH the creation time is now"

# ---- a failing step stops its running siblings promptly ----
mkdir -p "$T/sib"
printf 'FROM busybox AS a\nRUN sleep 30\nFROM busybox AS b\nRUN sleep 0.3; false\nFROM busybox\nCOPY --from=a /bin/sh /a\nCOPY --from=b /bin/sh /b\n' >"$T/sib/Dockerfile"
start=$(date +%s)
run_kiln build --no-cache "$T/sib"
expect_eq "the sibling failure fails the build" "$rc" 1
expect_eq "without waiting for the sleeping sibling" "$(( $(date +%s) - start < 10 ))" 1
expect_contains "the sibling is reported cancelled" "$err" "CANCELED"
expect_contains "the error is the failing step's" "$err" "Dockerfile:4: RUN sleep 0.3; false: process"

# ---- Ctrl-C stops the build cleanly ----
mkdir -p "$T/slow"
printf 'FROM busybox\nRUN sleep 30 && echo done > /f\n' >"$T/slow/Dockerfile"
"$KILN" build --no-cache "$T/slow" >"$T/slow.out" 2>"$T/slow.err" &
pid=$!
for _ in $(seq 100); do
	grep -q 'RUN sleep 30' "$T/slow.err" && break
	sleep 0.1
done
sleep 0.3
start=$(date +%s)
kill -INT "$pid"
set +e
wait "$pid"
rc=$?
set -e
expect_eq "an interrupted build fails" "$rc" 1
expect_eq "and stops promptly" "$(( $(date +%s) - start < 10 ))" 1
expect_contains "says so" "$(cat "$T/slow.err")" "interrupted"
expect_eq "no mounts left behind" "$(grep -cF "$T" /proc/self/mountinfo || true)" 0

finish
