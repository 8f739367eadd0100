#!/usr/bin/env bash
# kiln build of examples/multistage: the image, cache hits on rebuild, misses on change,
# build args, a failing step, --iidfile, -o type=local.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"
# count_steps TEXT: the number of steps that ran or came from the cache.
count_ran() { printf '%s\n' "$1" | grep -c '^#[0-9]* DONE' || true; }

make_busybox
CTX="$T/ctx"
cp -r "$KILN_SRC/examples/multistage" "$CTX"

# ---- the first build ----
run_kiln build -t site --iidfile "$T/iid" "$CTX"
expect_eq "first build succeeds: $err" "$rc" 0
expect_eq "nothing cached the first time" "$(count_cached "$err")" 0
expect_contains "names the image" "$err" "naming to site"
run_kiln images
expect_contains "the image is listed" "$out" "site:latest"
run_kiln run site cat /www/VERSION /www/test-report.txt
expect_eq "built content in the image" "$out" "$(printf '1.0.0\nok: 3 page(s), version 1.0.0')"
run_kiln run site cat /www/index.html
expect_contains "rendered page" "$out" "kiln example site"
run_kiln inspect site
expect_contains "config carries the stage's Cmd" "$out" '"httpd"'
expect_contains "image id in --iidfile" "$out" "$(cat "$T/iid")"
expect_contains "iidfile holds a digest" "$(cat "$T/iid")" "sha256:"

# ---- rebuild: everything from the cache ----
run_kiln build -t site "$CTX"
expect_eq "rebuild succeeds: $err" "$rc" 0
steps=$(printf '%s\n' "$err" | grep -c '^#[0-9]* \[' || true)
expect_eq "every step cached" "$(count_cached "$err")" "$steps"
expect_eq "nothing ran" "$(count_ran "$err" )" 1 # only the export

# ---- one context file changed: only what depends on it reruns ----
echo "A new line." >>"$CTX/pages/about.txt"
run_kiln build -t site "$CTX"
expect_eq "build after a change: $err" "$rc" 0
ran=$(printf '%s\n' "$err" | grep -B0 '^#[0-9]* \[' | grep -v '^#[0-9]* CACHED' || true)
# COPY pages, the build RUN, COPY --from=build, the test RUN via COPY test.sh's parent,
# COPY --from=test: WORKDIR, COPY build.sh, COPY test.sh's own file stay cached.
expect_contains "COPY build.sh stays cached" "$(printf '%s\n' "$err" | grep -A1 'COPY build.sh')" "CACHED"
expect_contains "WORKDIR stays cached" "$(printf '%s\n' "$err" | grep -A1 'WORKDIR /src')" "CACHED"
expect_eq "COPY pages reran" "$(printf '%s\n' "$err" | grep -A1 'COPY pages/' | grep -c CACHED || true)" 0
expect_eq "the build RUN reran" "$(printf '%s\n' "$err" | grep -A1 '\[build 8/8\] RUN' | grep -c CACHED || true)" 0
expect_contains "the build RUN reused the cache mount" "$err" "2 reused from the cache"
run_kiln run site cat /www/about.html
expect_contains "the change is in the image" "$out" "A new line."

# ---- a build arg the RUN uses ----
run_kiln build -t site --build-arg VERSION=2.0.0 "$CTX"
expect_eq "build with a build arg: $err" "$rc" 0
expect_eq "the RUN using VERSION reran" "$(printf '%s\n' "$err" | grep -A1 '\[build 8/8\] RUN' | grep -c CACHED || true)" 0
expect_contains "COPY build.sh still cached" "$(printf '%s\n' "$err" | grep -A1 'COPY build.sh')" "CACHED"
run_kiln run site cat /www/VERSION
expect_eq "the build arg's value" "$out" "2.0.0"

# ---- --target ----
run_kiln build -t site-test --target test "$CTX"
expect_eq "--target test: $err" "$rc" 0
run_kiln run site-test cat /src/test-report.txt
expect_eq "the test stage's image" "$out" "ok: 3 page(s), version 1.0.0"

# ---- -o type=local ----
run_kiln build -o "type=local,dest=$T/out" "$CTX"
expect_eq "-o type=local: $err" "$rc" 0
expect_eq "the final stage's files" "$(cat "$T/out/www/VERSION")" "1.0.0"
[ -x "$T/out/bin/busybox" ] && expect_eq "the base's files too" ok ok || fail "no bin/busybox in the output"

# ---- a failing step ----
mkdir -p "$T/fail"
cat >"$T/fail/Dockerfile" <<'DF'
FROM busybox
RUN echo before
RUN echo "some output" && false
RUN echo never
DF
run_kiln build -t broken "$T/fail"
expect_eq "a failing RUN exits 1" "$rc" 1
expect_contains "Dockerfile line and BuildKit's wording" "$err" 'Dockerfile:3: RUN echo "some output" && false: process "/bin/sh -c echo \"some output\" && false" did not complete successfully: exit code: 1'
expect_contains "the exit code" "$err" 'process "/bin/sh -c echo \"some output\" && false" did not complete successfully: exit code: 1'
expect_contains "the last output" "$err" "some output"
expect_eq "the step after never ran" "$(printf '%s\n' "$err" | grep -c 'echo never' || true)" 0
run_kiln images
expect_eq "no image named after a failed build" "$(printf '%s\n' "$out" | grep -c broken || true)" 0

# ---- usage ----
run_kiln build --no-such-flag "$CTX"
expect_eq "unknown flag is a usage error" "$rc" 2

finish
