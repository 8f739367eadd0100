#!/usr/bin/env bash
# kiln build and the build checks: warnings shown and the build goes on; --check runs only
# the checks; `# check=error=true` and BUILDKIT_DOCKERFILE_CHECK make findings fail the build.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"
make_busybox

CTX="$T/ctx"
mkdir -p "$CTX"
cat >"$CTX/Dockerfile" <<'EOF2'
FROM busybox as base
RUN echo built >/built
EOF2

run_kiln build -t chk "$CTX"
expect_eq "a warning does not stop the build" "$rc" "0"
expect_contains "the warning is shown with its line" "$err" "Dockerfile:1: warning FromAsCasing"

run_kiln build --check "$CTX"
expect_eq "--check passes with warnings only" "$rc" "0"
expect_contains "--check shows the findings" "$err" "FromAsCasing"
expect_eq "--check builds nothing" "$(printf '%s\n' "$out" "$err" | grep -c '^#[0-9]' || true)" "0"

printf '# check=error=true\n' | cat - "$CTX/Dockerfile" >"$CTX/Dockerfile.strict"
run_kiln build -f "$CTX/Dockerfile.strict" "$CTX"
expect_eq "check=error=true fails the build" "$rc" "1"
expect_contains "the failure says why" "$err" "build check error(s) (check=error=true)"
expect_contains "the finding is an error" "$err" "Dockerfile.strict:2: error FromAsCasing"
run_kiln build --check -f "$CTX/Dockerfile.strict" "$CTX"
expect_eq "--check fails on errors" "$rc" "1"

run_kiln build --build-arg BUILDKIT_DOCKERFILE_CHECK=skip=FromAsCasing -f "$CTX/Dockerfile.strict" "$CTX"
expect_eq "the build arg overrides the directive" "$rc" "0"
run_kiln build --build-arg "BUILDKIT_DOCKERFILE_CHECK=error=true" --check "$CTX"
expect_eq "the build arg can make warnings errors" "$rc" "1"

printf 'FROM busybox\nFOOBAR x\n' >"$CTX/Dockerfile.bad"
run_kiln build --check -f "$CTX/Dockerfile.bad" "$CTX"
expect_eq "--check reports a Dockerfile that does not plan" "$rc" "1"
expect_contains "with its line" "$err" "Dockerfile.bad:2:"
finish
