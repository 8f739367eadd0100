#!/usr/bin/env bash
# Tokens are reused until they expire, then fetched again: a token server handing out
# 3-second tokens and a registry slowed down by a proxy make one push outlive its token.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/registry_lib.sh"

reg_make_ca "$T/pki"
reg_token_server_start "$T/pki" alice exp-pw --expires-in 3
reg_start expiry --tls "$T/pki" --token "$TOKEN_REALM" "$TOKEN_ISSUER" "$TOKEN_CERT"
registry=$REG_HOST
reg_proxy_start "$registry" "$T/slow.log" --match /blobs/ --delay-ms 1000 \
	--upstream-ca "$T/pki/ca.crt" --tls-cert "$T/pki/server.crt" --tls-key "$T/pki/server.key"
front="127.0.0.1:$PROXY_PORT"
for hp in "$registry" "$front" "127.0.0.1:$TOKEN_PORT"; do
	mkdir -p "$KILN_CERTS_D/$hp"
	cp "$T/pki/ca.crt" "$KILN_CERTS_D/$hp/ca.crt"
done
reg_busybox_rootfs "$T/rootfs"
run_kiln import "$T/rootfs" expiry-test/busybox:1
local_digest=$out
run_kiln login -u alice -p exp-pw "$front"
expect_eq "login ($err)" "$rc" "0"

: >"$TOKEN_LOG"
start=$(date +%s)
run_kiln push expiry-test/busybox:1 "$front/exp/busybox:1"
took=$(($(date +%s) - start))
expect_eq "slow push ($err)" "$rc" "0"
expect_eq "push digest" "$out" "$local_digest"
fetches=$(grep -c 'user repository:exp/busybox:pull,push' "$TOKEN_LOG")
echo "token fetches: $fetches, push took ${took}s" >&2
# Each blob takes HEAD, POST and PUT at 1 s each; a 3 s token (renewed a second early)
# cannot last, and is not fetched for every request either.
expect_eq "push outlived one token (took ${took}s)" "$([ "$took" -ge 3 ] && echo yes)" "yes"
expect_eq "token fetched again after expiry ($fetches)" "$([ "$fetches" -ge 2 ] && echo yes)" "yes"
expect_eq "token reused before expiry ($fetches)" "$([ "$fetches" -le 4 ] && echo yes)" "yes"

finish
