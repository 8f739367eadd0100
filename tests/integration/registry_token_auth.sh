#!/usr/bin/env bash
# The Bearer token flow: a registry with token auth and a token server (both HTTPS, test
# CA). Anonymous callers may pull, alice may push; tokens are reused until they expire.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/registry_lib.sh"

reg_make_ca "$T/pki"
reg_token_server_start "$T/pki" alice t0ken-pw
reg_start token --tls "$T/pki" --token "$TOKEN_REALM" "$TOKEN_ISSUER" "$TOKEN_CERT"
export KILN_CERTS_D="$T/certs.d" DOCKER_CONFIG="$T/docker"
for hp in "$REG_HOST" "127.0.0.1:$TOKEN_PORT"; do
	mkdir -p "$KILN_CERTS_D/$hp"
	cp "$T/pki/ca.crt" "$KILN_CERTS_D/$hp/ca.crt"
done
reg_busybox_rootfs "$T/rootfs"
run_kiln import "$T/rootfs" token-test/busybox:1
local_digest=$out

# Anonymous: the token server grants pull only, so the push is refused.
run_kiln push token-test/busybox:1 "$REG_HOST/tok/busybox:1"
expect_eq "anonymous push fails" "$rc" "1"
expect_contains "anonymous push: unauthorized" "$err" "unauthorized"
expect_contains "anonymous push names the registry" "$err" "$REG_HOST"
expect_contains "token server saw an anonymous push scope" "$(cat "$TOKEN_LOG")" \
	"anon repository:tok/busybox:pull,push"

run_kiln login -u alice -p wrong "$REG_HOST"
expect_eq "wrong password fails" "$rc" "1"
expect_contains "wrong password: unauthorized" "$err" "unauthorized"
expect_contains "wrong password names the registry" "$err" "$REG_HOST"

run_kiln login -u alice -p t0ken-pw "$REG_HOST"
expect_eq "login ($err)" "$rc" "0"

: >"$TOKEN_LOG"
run_kiln push token-test/busybox:1 "$REG_HOST/tok/busybox:1"
expect_eq "push with token ($err)" "$rc" "0"
expect_eq "push digest" "$out" "$local_digest"
# One token for the push scope, reused for every blob and the manifest.
expect_eq "token fetched once for the push" \
	"$(grep -c 'user repository:tok/busybox:pull,push' "$TOKEN_LOG")" "1"

# Cross-repository mount: pushing the pulled image to another repository asks for both
# scopes and sends no blob bytes.
run_kiln pull "$REG_HOST/tok/busybox:1"
expect_eq "pull back ($err)" "$rc" "0"
: >"$TOKEN_LOG"
run_kiln push "$REG_HOST/tok/busybox:1" "$REG_HOST/tok/copy:1"
expect_eq "push with mount ($err)" "$rc" "0"
expect_contains "mount asks for the source scope" "$(cat "$TOKEN_LOG")" \
	"user repository:tok/copy:pull,push repository:tok/busybox:pull"

# Anonymous pull into an empty store (no credentials at all).
run_kiln logout "$REG_HOST"
expect_eq "logout" "$rc" "0"
run_kiln --root "$T/store2" pull "$REG_HOST/tok/copy:1"
expect_eq "anonymous pull ($err)" "$rc" "0"
expect_eq "pulled digest" "$(echo "$out" | head -1)" "$local_digest"

finish
