#!/usr/bin/env bash
# kiln push/pull against a plain-HTTP registry on loopback, and interop with skopeo both ways.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/registry_lib.sh"

reg_start plain
reg_busybox_rootfs "$T/rootfs"

run_kiln import "$T/rootfs" kiln-test/busybox:1
expect_eq "import exit" "$rc" "0"
local_digest=$out

# Push to the registry and pull back into an empty store.
run_kiln push kiln-test/busybox:1 "$REG_HOST/kiln/busybox:1"
expect_eq "push exit ($err)" "$rc" "0"
expect_eq "push prints the manifest digest" "$out" "$local_digest"

run_kiln --root "$T/store2" pull "$REG_HOST/kiln/busybox:1"
expect_eq "pull exit ($err)" "$rc" "0"
expect_eq "pulled digest" "$(echo "$out" | head -1)" "$local_digest"
expect_eq "pull names the image" "$(echo "$out" | tail -1)" "$REG_HOST/kiln/busybox:1"
run_kiln --root "$T/store2" images
expect_contains "pulled image listed" "$out" "$REG_HOST/kiln/busybox"
# The layer arrived whole: the store's config and manifest agree (inspect resolves both).
run_kiln --root "$T/store2" inspect "$REG_HOST/kiln/busybox:1"
expect_eq "inspect pulled image" "$rc" "0"
expect_contains "inspect shows the digest" "$out" "$local_digest"

# Pulling by digest works too and needs no tag.
run_kiln --root "$T/store3" pull "$REG_HOST/kiln/busybox@$local_digest"
expect_eq "pull by digest ($err)" "$rc" "0"
expect_eq "pull by digest prints it" "$(echo "$out" | head -1)" "$local_digest"

# skopeo reads what kiln pushed, blobs included (it verifies digests on copy).
sk_digest=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REG_HOST/kiln/busybox:1")
expect_eq "skopeo sees kiln's manifest" "$sk_digest" "$local_digest"
set +e
skopeo --insecure-policy copy --src-tls-verify=false "docker://$REG_HOST/kiln/busybox:1" \
	"oci:$T/skopeo-out:x" >"$T/skopeo.log" 2>&1
sk_rc=$?
set -e
expect_eq "skopeo copies kiln's image ($(cat "$T/skopeo.log"))" "$sk_rc" "0"

# kiln pulls what skopeo pushed from an OCI layout made by umoci.
umoci init --layout "$T/umoci" >/dev/null
umoci new --image "$T/umoci:base" >/dev/null
umoci insert --image "$T/umoci:base" "$T/rootfs/bin" /bin >/dev/null
skopeo --insecure-policy copy --dest-tls-verify=false "oci:$T/umoci:base" \
	"docker://$REG_HOST/skopeo/busybox:2" >/dev/null 2>&1
sk_digest=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REG_HOST/skopeo/busybox:2")
run_kiln --root "$T/store4" pull "$REG_HOST/skopeo/busybox:2"
expect_eq "pull skopeo's image ($err)" "$rc" "0"
expect_eq "same digest as skopeo" "$(echo "$out" | head -1)" "$sk_digest"

# ...and a Docker schema2 manifest that skopeo converted.
skopeo --insecure-policy copy --format v2s2 --dest-tls-verify=false "oci:$T/umoci:base" \
	"docker://$REG_HOST/skopeo/v2s2:1" >/dev/null 2>&1
raw=$(skopeo inspect --raw --tls-verify=false "docker://$REG_HOST/skopeo/v2s2:1")
expect_contains "skopeo pushed schema2" "$raw" "application/vnd.docker.distribution.manifest.v2+json"
sk_digest=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REG_HOST/skopeo/v2s2:1")
run_kiln --root "$T/store4" pull "$REG_HOST/skopeo/v2s2:1"
expect_eq "pull schema2 ($err)" "$rc" "0"
expect_eq "schema2 digest" "$(echo "$out" | head -1)" "$sk_digest"
run_kiln --root "$T/store4" push "$REG_HOST/skopeo/v2s2:1" "$REG_HOST/kiln/v2s2:1"
expect_eq "push schema2 back ($err)" "$rc" "0"
raw2=$(skopeo inspect --raw --tls-verify=false "docker://$REG_HOST/kiln/v2s2:1")
expect_eq "schema2 pushed byte for byte" "$raw2" "$raw"

# Chunked upload (PATCH), to a new repository; pulling it back gives the same image.
KILN_PUSH_CHUNK_SIZE=65536 run_kiln push kiln-test/busybox:1 "$REG_HOST/chunked/busybox:1"
expect_eq "chunked push ($err)" "$rc" "0"
run_kiln --root "$T/store5" pull "$REG_HOST/chunked/busybox:1"
expect_eq "pull chunked ($err)" "$rc" "0"
expect_eq "chunked digest" "$(echo "$out" | head -1)" "$local_digest"

# A second push skips the blobs (HEAD says they are there) and succeeds.
run_kiln push kiln-test/busybox:1 "$REG_HOST/kiln/busybox:again"
expect_eq "second push ($err)" "$rc" "0"

# Unknown images fail with a clear message.
run_kiln --root "$T/store6" pull "$REG_HOST/kiln/nothing:1"
expect_eq "missing image fails" "$rc" "1"
expect_contains "missing image message" "$err" "not found"

finish
