#!/usr/bin/env bash
# Multi-platform images: kiln pulls the manifest for the host or for --platform out of an
# OCI index, names the index, and pushes the whole index when it holds every manifest.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/registry_lib.sh"

reg_start index
reg_busybox_rootfs "$T/rootfs"
echo amd64 >"$T/rootfs/etc/arch"
run_kiln import --platform linux/amd64 "$T/rootfs" idx/amd:1
amd=$out
echo arm64 >"$T/rootfs/etc/arch"
run_kiln import --platform linux/arm64 "$T/rootfs" idx/arm:1
arm=$out
run_kiln push idx/amd:1 "$REG_HOST/multi/busybox:amd"
expect_eq "push amd64 ($err)" "$rc" "0"
run_kiln push idx/arm:1 "$REG_HOST/multi/busybox:arm"
expect_eq "push arm64 ($err)" "$rc" "0"

# An OCI index over the two, put by hand as another tool would.
size_of() {
	curl -sI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"http://$REG_HOST/v2/multi/busybox/manifests/$1" |
		tr -d '\r' | awk -F': ' 'tolower($1)=="content-length"{print $2}'
}
cat >"$T/index.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$arm","size":$(size_of arm),
  "platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$amd","size":$(size_of amd),
  "platform":{"os":"linux","architecture":"amd64"}}]}
JSON
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
	-H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary @"$T/index.json" \
	"http://$REG_HOST/v2/multi/busybox/manifests/all")
expect_eq "index put" "$code" "201"
index_digest=sha256:$(sha256sum "$T/index.json" | cut -d' ' -f1)

# The host's platform by default; the other one is left alone.
case $(uname -m) in
aarch64) host=$arm other=$amd other_platform=linux/amd64 ;;
*) host=$amd other=$arm other_platform=linux/arm64 ;;
esac
run_kiln --root "$T/s1" pull "$REG_HOST/multi/busybox:all"
expect_eq "pull index ($err)" "$rc" "0"
expect_eq "pull prints the index digest" "$(echo "$out" | head -1)" "$index_digest"
run_kiln --root "$T/s1" inspect "$REG_HOST/multi/busybox:all"
expect_contains "host platform manifest chosen" "$out" "$host"
expect_eq "other manifest not fetched" \
	"$([ -e "$T/s1/content/blobs/sha256/${other#sha256:}" ] && echo yes || echo no)" "no"

# --platform picks the other one.
run_kiln --root "$T/s1" pull --platform "$other_platform" "$REG_HOST/multi/busybox:all"
expect_eq "pull other platform ($err)" "$rc" "0"
expect_eq "other manifest fetched" \
	"$([ -e "$T/s1/content/blobs/sha256/${other#sha256:}" ] && echo yes || echo no)" "yes"
run_kiln --root "$T/s1" pull --platform linux/s390x "$REG_HOST/multi/busybox:all"
expect_eq "missing platform fails" "$rc" "1"
expect_contains "missing platform lists the offer" "$err" "linux/arm64"

# With both manifests in the store, pushing the name pushes the whole index.
run_kiln --root "$T/s1" push "$REG_HOST/multi/busybox:all" "$REG_HOST/copy/busybox:all"
expect_eq "push index ($err)" "$rc" "0"
expect_eq "push prints the index digest" "$out" "$index_digest"
raw=$(skopeo inspect --raw --tls-verify=false "docker://$REG_HOST/copy/busybox:all")
expect_contains "registry has the index" "$raw" "application/vnd.oci.image.index.v1+json"
sk=$(skopeo inspect --tls-verify=false --override-arch arm64 --format '{{.Digest}}' \
	"docker://$REG_HOST/copy/busybox:all")
expect_eq "skopeo resolves the copied index" "$sk" "$index_digest"
code=$(curl -s -o /dev/null -w '%{http_code}' -I \
	-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	"http://$REG_HOST/v2/copy/busybox/manifests/$arm")
expect_eq "arm64 manifest copied too" "$code" "200"

finish
