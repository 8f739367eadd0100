#!/usr/bin/env bash
# kiln build --progress tty|auto: the live view under a pseudo-terminal (script(1)), read
# back through a small terminal (term_screen.py) so the test sees what a user would see.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"
command -v script >/dev/null || { echo "FAIL: script(1) from util-linux is needed" >&2; exit 1; }
SCREEN="$(dirname "$0")/term_screen.py"

# in_tty COLS ROWS ARGS...: kiln under a pty of that size; the raw bytes in $T/raw, the
# screen afterwards in $screen, the exit code in $rc.
in_tty() {
	local cols=$1 rows=$2
	shift 2
	local cmd="stty cols $cols rows $rows; exec $(printf '%q ' "$KILN" "$@")"
	set +e
	script -qfec "$cmd" /dev/null </dev/null >"$T/raw" 2>&1
	rc=$?
	set -e
	screen=$(python3 "$SCREEN" "$cols" "$rows" <"$T/raw")
}
# final: the last frame (from its header) and what follows it.
final() { printf '%s\n' "$screen" | sed -n '/^\[+\] Building/h; /^\[+\] Building/!H; ${x;p}'; }

make_busybox
CTX="$T/ctx"
mkdir -p "$CTX"
echo v1 >"$CTX/a.txt"
cat >"$CTX/Dockerfile" <<'DF'
FROM busybox AS base
RUN echo prepared > /p
FROM base
COPY a.txt /a.txt
RUN for i in 1 2 3 4; do echo tick $i; sleep 0.4; done
RUN echo "the long step name is clipped to the terminal width, so it never wraps" > /long
DF

# ---- a first build: step lines, live output tails, the exporting step ----
in_tty 72 40 build --progress tty -t ttyimg "$CTX"
expect_eq "tty build: $screen" "$rc" 0
expect_eq "the view stays inside the terminal" "$(printf '%s\n' "$screen" | grep TERM-ERROR || true)" ""
f=$(final)
expect_contains "a step line with its time" "$f" " => [base 2/2] RUN echo prepared > /p"
expect_eq "steps end with their time" "$(printf '%s\n' "$f" | grep -c '^ => \[.* [0-9]*\.[0-9]s$')" \
	"$(printf '%s\n' "$f" | grep -c '^ => \[')"
expect_contains "a long step line is clipped" "$f" " => [stage-1 4/4] RUN echo \"the long step name is clip"
expect_contains "the exporting step" "$f" " => exporting to image"
expect_contains "the export names the image" "$f" " => => naming to ttyimg"
header=$(printf '%s\n' "$f" | head -1)
expect_eq "the summary line counts every step" \
	"$(printf '%s\n' "$header" | sed -E 's/^\[\+\] Building [0-9]+\.[0-9]s \(([0-9]+)\/([0-9]+)\) FINISHED$/\1=\2/')" \
	"7=7"
expect_contains "a running step showed its output live" "$(cat "$T/raw")" " => => # tick 2"
expect_eq "the final view has no live output" "$(printf '%s\n' "$f" | grep -c '# tick' || true)" 0
expect_eq "the view was drawn in place several times" "$(grep -o 'Building' "$T/raw" | wc -l | awk '$1 > 10 {print "many"}')" "many"
expect_eq "nothing is redrawn after the summary" "$(sed -n '/FINISHED/,$p' "$T/raw" | tail -n +2 | grep -c $'\x1b\\[[0-9]*A' || true)" 0
run_kiln run ttyimg cat /p /a.txt
expect_eq "the image was built" "$out" "$(printf 'prepared\nv1')"

# ---- a rebuild: CACHED steps ----
in_tty 72 40 build --progress tty "$CTX"
expect_eq "tty rebuild: $screen" "$rc" 0
f=$(final)
expect_contains "cached steps say so" "$f" " => CACHED [stage-1 3/4] RUN for i in 1 2 3 4; do echo tick"
expect_contains "a cached step takes no time" "$f" " => CACHED [base 2/2] RUN echo prepared > /p"

# ---- --explain: why a step ran, under it ----
echo v1b >"$CTX/a.txt"
in_tty 100 40 build --progress tty --explain "$CTX"
expect_eq "tty explain build: $screen" "$rc" 0
expect_contains "the reason sits under the step" "$(final | grep -A1 ' => \[stage-1 2/4\] COPY a.txt /a.txt')" \
	" => => explain: file /a.txt under"

# ---- a small terminal: the live view drops old lines instead of scrolling ----
echo v2 >"$CTX/a.txt"
in_tty 50 6 build --progress tty --no-cache "$CTX"
expect_eq "small terminal build: $screen" "$rc" 0
expect_contains "a running step's output still shows" "$(cat "$T/raw")" " => => # tick 3"
expect_eq "the view fits 50x6" "$(printf '%s\n' "$screen" | grep TERM-ERROR || true)" ""
expect_contains "the final view is whole" "$(final)" " => [stage-1 2/4] COPY a.txt /a.txt"

# ---- Ctrl-C: the view stops with the build, nothing is drawn after it ----
cat >"$CTX/Dockerfile" <<'DF'
FROM busybox
RUN echo waiting; sleep 30
DF
script -qfec "stty cols 80 rows 40; exec $(printf '%q ' "$KILN" build --progress tty "$CTX")" /dev/null \
	</dev/null >"$T/raw" 2>&1 &
spid=$!
for _ in $(seq 100); do grep -q '# waiting' "$T/raw" && break; sleep 0.1; done
pkill -INT -P "$spid" # kiln, which script runs as its child
set +e
wait "$spid"
rc=$?
set -e
screen=$(python3 "$SCREEN" 80 40 <"$T/raw")
expect_eq "an interrupted build fails" "$rc" 1
f=$(final)
expect_contains "the summary says it failed" "$(printf '%s\n' "$f" | head -1)" ") FAILED"
expect_contains "the running step ended with the build" "$f" " => ERROR [stage-0 2/2] RUN echo waiting; sleep 30"
expect_eq "nothing is redrawn after the summary" "$(sed -n '/FAILED/,$p' "$T/raw" | tail -n +2 | grep -c $'\x1b\\[[0-9]*A' || true)" 0
expect_contains "the interruption is said above the view" "$(printf '%s\n' "$screen" | grep -B1 '^\[+\] Building.*FAILED')" \
	"kiln: interrupted; stopping the build"
expect_eq "one view on screen" "$(printf '%s\n' "$screen" | grep -c '^\[+\] Building')" 1

# ---- a failing step: its output and the error stay on screen ----
cat >"$CTX/Dockerfile" <<'DF'
FROM busybox
RUN for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo out-$i; done; echo oops >&2; exit 7
DF
in_tty 100 40 build --progress tty "$CTX"
expect_eq "a failing build fails" "$rc" 1
f=$(final)
expect_contains "the summary says it failed" "$(printf '%s\n' "$f" | head -1)" ") FAILED"
expect_contains "the failing step is marked" "$f" " => ERROR [stage-0 2/2] RUN for i in"
expect_contains "its last output lines stay" "$f" " => => # out-12"
expect_contains "up to its error output" "$f" " => => # oops"
expect_eq "older lines are dropped" "$(printf '%s\n' "$f" | grep -c ' => => # out-2$' || true)" 0
expect_contains "the error follows the view" "$f" "Dockerfile:2: RUN for i in"
expect_contains "with the exit code" "$f" "exit code: 7"

# ---- auto: tty on a terminal, plain otherwise ----
in_tty 80 40 build --progress auto "$CTX"
expect_contains "auto on a terminal is the live view" "$screen" "[+] Building"
run_kiln build --progress auto "$CTX"
expect_eq "auto without a terminal fails the same" "$rc" 1
expect_contains "auto without a terminal is plain" "$err" "#2 out-12"
expect_eq "no live view without a terminal" "$(printf '%s\n' "$err" | grep -c 'Building' || true)" 0
set +e
TERM=dumb script -qfec "$(printf '%q ' "$KILN" build "$CTX")" /dev/null </dev/null >"$T/raw" 2>&1
set -e
expect_contains "the default on a dumb terminal is plain" "$(cat "$T/raw")" "#2 out-12"
finish
