#!/usr/bin/env bash
# A registry that redirects blob downloads to a storage CDN on another host: kiln follows
# the redirect without its credentials or token, and still verifies what it gets.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/registry_lib.sh"

reg_make_ca "$T/pki"
reg_token_server_start "$T/pki" alice cdn-pw
reg_start cdn --tls "$T/pki" --token "$TOKEN_REALM" "$TOKEN_ISSUER" "$TOKEN_CERT"
registry=$REG_HOST
export KILN_CERTS_D="$T/certs.d" DOCKER_CONFIG="$T/docker"

# The CDN ("localhost", another host name and port) serves the registry's blob files.
reg_proxy_start "" "$T/cdn.log" --serve-blobs "$REG_DATA" \
	--tls-cert "$T/pki/server.crt" --tls-key "$T/pki/server.key"
cdn="localhost:$PROXY_PORT"
# The front: the registry as clients see it, redirecting blob GETs to the CDN.
reg_proxy_start "$registry" "$T/front.log" --redirect-blobs "https://$cdn" \
	--upstream-ca "$T/pki/ca.crt" --tls-cert "$T/pki/server.crt" --tls-key "$T/pki/server.key"
front="127.0.0.1:$PROXY_PORT"
for hp in "$registry" "$front" "$cdn" "127.0.0.1:$TOKEN_PORT"; do
	mkdir -p "$KILN_CERTS_D/$hp"
	cp "$T/pki/ca.crt" "$KILN_CERTS_D/$hp/ca.crt"
done

reg_busybox_rootfs "$T/rootfs"
run_kiln import "$T/rootfs" cdn-test/busybox:1
local_digest=$out
run_kiln login -u alice -p cdn-pw "$front"
expect_eq "login through the front ($err)" "$rc" "0"
run_kiln push cdn-test/busybox:1 "$front/cdn/busybox:1"
expect_eq "push ($err)" "$rc" "0"

: >"$T/front.log"
run_kiln --root "$T/store2" pull "$front/cdn/busybox:1"
expect_eq "pull via the CDN ($err)" "$rc" "0"
expect_eq "pulled digest" "$(echo "$out" | head -1)" "$local_digest"
expect_contains "the front redirected blobs" "$(cat "$T/front.log")" " 307 - auth"
expect_contains "the front saw the token on manifests" "$(grep /manifests/ "$T/front.log")" " 200 - auth"
expect_eq "the CDN served blobs" "$(grep -c ' 200 ' "$T/cdn.log")" "2"
expect_eq "the CDN never saw credentials" "$(grep -c ' auth$' "$T/cdn.log" || true)" "0"

# The CDN serving other bytes than the digest promises is caught.
layer=$(grep -o 'sha256:[0-9a-f]*' "$T/cdn.log" | sort -u | while read -r d; do
	h=${d#sha256:}
	s=$(stat -c %s "$REG_DATA/docker/registry/v2/blobs/sha256/${h:0:2}/$h/data")
	echo "$s $h"
done | sort -n | tail -1 | cut -d' ' -f2)
f="$REG_DATA/docker/registry/v2/blobs/sha256/${layer:0:2}/$layer/data"
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[10]^=1; open(p,"wb").write(bytes(b))' "$f"
run_kiln --root "$T/store3" pull "$front/cdn/busybox:1"
expect_eq "corrupt CDN blob fails" "$rc" "1"
expect_contains "corrupt CDN blob: digest mismatch" "$err" "digest mismatch"

finish
