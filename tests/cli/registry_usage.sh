#!/usr/bin/env bash
# Usage errors of pull/push/login/logout, caught before any network access.
source "$(dirname "$0")/../lib.sh"
export DOCKER_CONFIG="$T/docker"

run_kiln pull
expect_eq "pull without REF" "$rc" "2"
expect_contains "pull usage" "$err" "Usage: kiln pull"
run_kiln pull a b
expect_eq "pull with two REFs" "$rc" "2"
run_kiln pull "Not A Ref"
expect_eq "pull bad reference" "$rc" "1"
run_kiln pull --platform "" busybox
expect_eq "pull bad platform" "$rc" "1"
run_kiln push
expect_eq "push without REF" "$rc" "2"
run_kiln push a b c
expect_eq "push with three args" "$rc" "2"
run_kiln push "localhost:1/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
expect_eq "push to a digest" "$rc" "1"
expect_contains "push to a digest message" "$err" "not a digest"
run_kiln push no-such-image:1 127.0.0.1:1/x:1
expect_eq "push of an image not in the store" "$rc" "1"
run_kiln login
expect_eq "login without HOST" "$rc" "2"
run_kiln login --password-stdin 127.0.0.1:1 </dev/null
expect_eq "password-stdin needs a user" "$rc" "2"
run_kiln login -u a -p b --password-stdin 127.0.0.1:1
expect_eq "-p and --password-stdin" "$rc" "2"
run_kiln logout
expect_eq "logout without HOST" "$rc" "2"
run_kiln logout 127.0.0.1:1
expect_eq "logout when not logged in" "$rc" "1"
expect_contains "logout message" "$err" "not logged in to 127.0.0.1:1"
run_kiln pull --help
expect_eq "pull --help" "$rc" "0"
expect_contains "pull --help text" "$out" "--insecure-registry"

finish
