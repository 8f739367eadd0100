#!/usr/bin/env bash
# kiln du and kiln prune: the build cache's records and the snapshots of its steps.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"
# count_steps TEXT: the number of steps that ran or came from the cache.
count_ran() { printf '%s\n' "$1" | grep -c '^#[0-9]* DONE' || true; }

make_busybox
mkdir -p "$T/ctx"
cat >"$T/ctx/Dockerfile" <<'DF'
FROM busybox
RUN head -c 200000 /dev/zero > /big
RUN echo small > /small
DF
run_kiln build -t pr "$T/ctx"
expect_eq "build: $err" "$rc" 0
run_kiln du
expect_eq "du: $err" "$rc" 0
expect_contains "du lists the RUN with its size" "$(printf '%s\n' "$out" | grep 'head -c')" "200.0kB"
expect_contains "du totals" "$out" "in 3 records"

run_kiln prune
expect_eq "prune keeps what was used recently" "$out" "Removed 0 records, 0B"
run_kiln prune --keep-storage 1M
expect_eq "everything fits in 1M" "$out" "Removed 0 records, 0B"
run_kiln prune --keep-storage 100k
expect_eq "prune --keep-storage: $err" "$rc" 0
expect_contains "the least recently used go until the rest fit" "$out" "Removed"
run_kiln du
expect_eq "nothing over 100k is left" "$(printf '%s\n' "$out" | grep -c 'head -c' || true)" 0

# A parent step last used a few seconds before its child (a build that straddles a second):
# it can only go with the child, so --keep-storage takes both rather than neither.
run_kiln build -t pr "$T/ctx"
expect_eq "rebuild: $err" "$rc" 0
rec() { grep -l -- "$1" "$T/root/cache/records/"*; }
touch -d '-20 seconds' "$T/root/cache/records/"*
touch -d '-10 seconds' "$(rec 'echo small')"
run_kiln prune --keep-storage 100k
expect_eq "prune --keep-storage, parent older than child: $err" "$rc" 0
run_kiln du
expect_eq "the big parent went with its child" "$(printf '%s\n' "$out" | grep -c 'head -c' || true)" 0

run_kiln prune --all
expect_eq "prune --all: $err" "$rc" 0
run_kiln du
expect_contains "no records left" "$out" "Total: 0B in 0 records"
run_kiln build -t pr "$T/ctx"
expect_eq "rebuild after prune: $err" "$rc" 0
expect_eq "the RUN steps ran again" "$(printf '%s\n' "$err" | grep -A1 '\] RUN' | grep -c CACHED || true)" 0
run_kiln prune --all
run_kiln run pr cat /small
expect_eq "images do not depend on the cache" "$out" "small"
run_kiln prune --bogus
expect_eq "unknown option" "$rc" 2

finish
