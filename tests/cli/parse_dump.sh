#!/bin/bash
# `kiln parse --dump` against the golden cases in tests/frontend/dump: NAME.dockerfile with
# NAME.expected (stdout byte for byte, exit 0) or NAME.error (a failure whose stderr starts
# with "NAME.dockerfile:LINE:" and contains the expected text).
. "$(dirname "$0")/../lib.sh"

cases="$KILN_SRC/tests/frontend/dump"
cd "$cases"

ncases=0
for df in *.dockerfile; do
	name=${df%.dockerfile}
	ncases=$((ncases + 1))
	if [ -f "$name.expected" ]; then
		set +e
		"$KILN" parse --dump "$df" >"$T/out" 2>"$T/err"
		rc=$?
		set -e
		expect_eq "$name: exit code" "$rc" "0"
		checks=$((checks + 1))
		if ! cmp -s "$T/out" "$name.expected"; then
			fail "$name: dump differs"
			diff -u "$name.expected" "$T/out" >&2 || true
		fi
	elif [ -f "$name.error" ]; then
		run_kiln parse --dump "$df"
		checks=$((checks + 1))
		if [ "$rc" -eq 0 ] || [ "$rc" -ge 126 ]; then
			fail "$name: exit code $rc, want a failure below 126"
		fi
		expect_contains "$name: error text" "$err" "$(cat "$name.error")"
		case "$err" in
		"$df":[0-9]*:*) checks=$((checks + 1)) ;;
		*) fail "$name: stderr does not start with $df:LINE: ($err)" ;;
		esac
		expect_eq "$name: nothing on stdout" "$out" ""
	else
		fail "$name: neither .expected nor .error"
	fi
done
[ "$ncases" -ge 40 ] || fail "only $ncases golden cases found"

# Standard input: "-" reads it, and errors name "-".
set +e
"$KILN" parse --dump - <spec_examples.dockerfile >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_eq "stdin: exit code" "$rc" "0"
checks=$((checks + 1))
cmp -s "$T/out" spec_examples.expected || fail "stdin: dump differs"
set +e
"$KILN" parse --dump - <err_env_legacy.dockerfile >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_eq "stdin error: exit code" "$rc" "1"
expect_contains "stdin error: location" "$(cat "$T/err")" "-:2: ENV"

# The default file is ./Dockerfile.
mkdir -p "$T/dir"
printf 'FROM a\nRUN b\n' >"$T/dir/Dockerfile"
(cd "$T/dir" && "$KILN" parse --dump) >"$T/out"
expect_eq "default file" "$(cat "$T/out")" '(from "a")
(run "b")'

# A missing file fails without a crash.
run_kiln parse --dump "$T/nope"
expect_eq "missing file: exit code" "$rc" "1"

# Warnings go to stderr, the dump alone to stdout.
printf '# syntax=docker/dockerfile:1\nFROM a\n' >"$T/syntax"
run_kiln parse --dump "$T/syntax"
expect_eq "syntax: exit code" "$rc" "0"
expect_eq "syntax: stdout" "$out" '(from "a")'
expect_contains "syntax: warning" "$err" "syntax directive ignored: kiln has its own frontend"

# Options.
run_kiln parse --help
expect_eq "--help: exit code" "$rc" "0"
expect_contains "--help: usage" "$out" "Usage: kiln parse"
run_kiln parse --bogus spec_examples.dockerfile
expect_eq "unknown option: exit code" "$rc" "2"
expect_contains "unknown option: message" "$err" "--bogus"
run_kiln parse --format=yaml spec_examples.dockerfile
expect_eq "unknown format: exit code" "$rc" "2"
run_kiln parse --dump a b
expect_eq "two files: exit code" "$rc" "2"

finish
