#!/usr/bin/env bash
# kiln over HTTPS: a registry whose certificate comes from a test CA, trusted only through
# $KILN_CERTS_D/HOST:PORT/ca.crt as with Docker's /etc/docker/certs.d.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/registry_lib.sh"

reg_make_ca "$T/pki"
reg_start tls --tls "$T/pki"
reg_busybox_rootfs "$T/rootfs"
run_kiln import "$T/rootfs" tls-test/busybox:1
expect_eq "import" "$rc" "0"
local_digest=$out

# Without the CA the certificate is refused; loopback then tries plain HTTP, which a TLS
# registry does not speak, so the push fails and says why.
export KILN_CERTS_D="$T/certs.d"
mkdir -p "$KILN_CERTS_D"
run_kiln push tls-test/busybox:1 "$REG_HOST/tls/busybox:1"
expect_eq "untrusted certificate fails" "$rc" "1"
expect_contains "error names the host" "$err" "$REG_HOST"
expect_contains "error mentions the certificate" "$err" "certificate"

# With the CA in certs.d the same push works, and the pull into an empty store too.
mkdir -p "$KILN_CERTS_D/$REG_HOST"
cp "$T/pki/ca.crt" "$KILN_CERTS_D/$REG_HOST/ca.crt"
run_kiln push tls-test/busybox:1 "$REG_HOST/tls/busybox:1"
expect_eq "push over TLS ($err)" "$rc" "0"
expect_eq "push digest" "$out" "$local_digest"
run_kiln --root "$T/store2" pull "$REG_HOST/tls/busybox:1"
expect_eq "pull over TLS ($err)" "$rc" "0"
expect_eq "pulled digest" "$(echo "$out" | head -1)" "$local_digest"

# --insecure-registry skips verification (as Docker does) even without the CA.
rm -rf "$KILN_CERTS_D/$REG_HOST"
run_kiln --root "$T/store3" pull --insecure-registry "$REG_HOST" "$REG_HOST/tls/busybox:1"
expect_eq "insecure pull ($err)" "$rc" "0"
expect_eq "insecure pulled digest" "$(echo "$out" | head -1)" "$local_digest"
# ...but only for the host it names.
run_kiln --root "$T/store4" pull --insecure-registry "127.0.0.2:1" "$REG_HOST/tls/busybox:1"
expect_eq "other host stays verified" "$rc" "1"

mkdir -p "$T/skopeo-certs" && cp "$T/pki/ca.crt" "$T/skopeo-certs/"
sk_digest=$(skopeo inspect --cert-dir "$T/skopeo-certs" --format '{{.Digest}}' "docker://$REG_HOST/tls/busybox:1" 2>/dev/null || true)
expect_eq "skopeo reads it over TLS" "$sk_digest" "$local_digest"

# A registry that wants a client certificate gets the NAME.cert/NAME.key from certs.d.
reg_start mtls --tls "$T/pki" --client-ca "$T/pki/ca.crt"
mkdir -p "$KILN_CERTS_D/$REG_HOST"
cp "$T/pki/ca.crt" "$KILN_CERTS_D/$REG_HOST/ca.crt"
run_kiln push tls-test/busybox:1 "$REG_HOST/mtls/busybox:1"
expect_eq "push without a client certificate fails" "$rc" "1"
cp "$T/pki/client.cert" "$T/pki/client.key" "$KILN_CERTS_D/$REG_HOST/"
run_kiln push tls-test/busybox:1 "$REG_HOST/mtls/busybox:1"
expect_eq "push with a client certificate ($err)" "$rc" "0"
run_kiln --root "$T/store5" pull "$REG_HOST/mtls/busybox:1"
expect_eq "pull with a client certificate ($err)" "$rc" "0"
expect_eq "mtls pulled digest" "$(echo "$out" | head -1)" "$local_digest"

finish
