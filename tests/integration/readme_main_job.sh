#!/usr/bin/env bash
# The README's first command, after the install and compile: the offline busybox image,
# a build of examples/multistage, and a run of its result. Keeps the README honest.
source "$(dirname "$0")/../lib.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root (CI runs as root)"

cmd=$(sed -n '/^```sh$/{n;p;q}' "$KILN_SRC/README.md")
expect_contains "README's first command builds the example" "$cmd" \
	"examples/busybox-image.sh build/kiln && build/kiln build -t kiln-example examples/multistage && build/kiln run kiln-example cat /www/test-report.txt"

cd "$KILN_SRC"
set +e
"$KILN_SRC/examples/busybox-image.sh" "$KILN" >"$T/import.log" 2>&1
rc=$?
set -e
expect_eq "busybox-image.sh imports the base image" "$rc" "0"
run_kiln build -t kiln-example examples/multistage
expect_eq "the example builds" "$rc" "0"
run_kiln run kiln-example cat /www/test-report.txt
expect_eq "its tests ran in the build" "$out" "ok: 3 page(s), version 1.0.0"
run_kiln run kiln-example cat /www/VERSION
expect_eq "the final image holds the site" "$out" "1.0.0"
finish
