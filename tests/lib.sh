# Shared helpers for kiln's shell tests (tests/cli, tests/integration).
# Each test sources this file; $KILN is the binary under test, $KILN_SRC the source tree.
set -euo pipefail
: "${KILN:?KILN must point to the kiln binary}"
: "${KILN_SRC:?KILN_SRC must point to the source tree}"

T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-cli-XXXXXX")
export KILN_ROOT="$T/root" # every test has its own store, never the system one
trap 'rm -rf "$T"' EXIT
failures=0
checks=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# expect_eq WHAT GOT WANT
expect_eq() {
	checks=$((checks + 1))
	if [ "$2" != "$3" ]; then
		fail "$1"
		diff -u <(printf '%s\n' "$3") <(printf '%s\n' "$2") >&2 || true
	fi
}

# expect_contains WHAT HAYSTACK NEEDLE
expect_contains() {
	checks=$((checks + 1))
	case "$2" in
	*"$3"*) ;;
	*) fail "$1: \"$2\" does not contain \"$3\"" ;;
	esac
}

# run_kiln: runs kiln, capturing stdout in $out, stderr in $err and the exit code in $rc.
run_kiln() {
	set +e
	"$KILN" "$@" >"$T/stdout" 2>"$T/stderr"
	rc=$?
	set -e
	out=$(cat "$T/stdout")
	err=$(cat "$T/stderr")
}

# skip REASON: only for runs by hand without privileges; CI fails on any skip.
skip() {
	echo "SKIP: $*" >&2
	exit 77
}

finish() {
	if [ "$checks" -eq 0 ]; then
		echo "FAIL: test made no checks" >&2
		exit 1
	fi
	if [ "$failures" -ne 0 ]; then
		echo "$failures of $checks checks failed" >&2
		exit 1
	fi
	echo "all $checks checks passed"
}
