#!/usr/bin/env bash
# kill -9 of kiln build at several points; the next build succeeds and reuses the cache.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"
# count_steps TEXT: the number of steps that ran or came from the cache.
count_ran() { printf '%s\n' "$1" | grep -c '^#[0-9]* DONE' || true; }

make_busybox
CTX="$T/ctx"
mkdir -p "$CTX"
echo ctx >"$CTX/c.txt"
cat >"$CTX/Dockerfile" <<'DF'
FROM busybox AS a
RUN sleep 0.3 && echo a1 > /a1
RUN sleep 0.3 && echo a2 > /a2
COPY c.txt /c.txt
RUN sleep 0.3 && cat /a1 /a2 /c.txt > /a3
FROM busybox
COPY --from=a /a3 /out/a3
RUN sleep 0.3 && cat /out/a3 > /all && echo final >> /all
DF
# Kill at several points: during the image unpack, a RUN, a commit, a copy, the export.
for d in 0.05 0.2 0.35 0.5 0.65 0.8 0.95 1.1 1.25; do
	"$KILN" build "$CTX" >/dev/null 2>&1 &
	pid=$!
	sleep "$d"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
done
run_kiln build -t survived "$CTX"
expect_eq "the build after the kills succeeds: $err" "$rc" 0
cached=$(count_cached "$err")
checks=$((checks + 1))
[ "$cached" -ge 3 ] || fail "only $cached steps came from the cache after the killed builds"
run_kiln run survived cat /all
expect_eq "the right content" "$out" "$(printf 'a1\na2\nctx\nfinal')"
run_kiln build -t survived "$CTX"
steps=$(printf '%s\n' "$err" | grep -c '^#[0-9]* \[' || true)
expect_eq "then everything is cached" "$(count_cached "$err")" "$steps"
expect_eq "no mounts left behind" "$(grep -cF "$KILN_ROOT" /proc/self/mountinfo || true)" 0
# The builds after the kills opened the store alone: a commit diff a killed build left
# without its record is gone, and so is every marker of one in flight.
unnamed=""
for d in "$KILN_ROOT"/snapshots/*/diffs/c-*; do
	[ -e "$d" ] || continue
	grep -qlx "diff ${d##*/}" "${d%/diffs/*}"/meta/* || unnamed="$unnamed ${d##*/}"
done
expect_eq "every commit diff is named by a snapshot" "$unnamed" ""
expect_eq "no commit in flight is left marked" "$(ls -A "$KILN_ROOT"/snapshots/*/pending)" ""

# ---- concurrent builds on one store ----
run_kiln prune --all
pids=()
for i in 1 2 3; do
	"$KILN" build -t "conc$i" "$CTX" >"$T/conc$i.out" 2>&1 &
	pids+=($!)
done
for i in 1 2 3; do
	set +e
	wait "${pids[$((i - 1))]}"
	crc=$?
	set -e
	expect_eq "concurrent build $i: $(tail -3 "$T/conc$i.out")" "$crc" 0
	run_kiln run "conc$i" cat /all
	expect_eq "concurrent build $i's content" "$out" "$(printf 'a1\na2\nctx\nfinal')"
done

finish
