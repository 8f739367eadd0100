#!/usr/bin/env bash
# The content store from the command line: import a busybox root filesystem, list,
# inspect, tag, save as OCI and docker archives (checked with umoci and skopeo), load them
# into fresh stores, load what skopeo wrote, remove names.
. "$KILN_SRC/tests/lib.sh"

command -v skopeo >/dev/null || skip "skopeo is not installed"
command -v umoci >/dev/null || skip "umoci is not installed"
[ -x /bin/busybox ] || skip "busybox-static is not installed"

# A base image, offline: bin/busybox and its applet links.
rootfs="$T/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in sh ls cat echo env; do ln -s busybox "$rootfs/bin/$applet"; done

export SOURCE_DATE_EPOCH=1700000000
run_kiln --root "$KILN_ROOT" import "$rootfs" busybox:kiln
expect_eq "import exit" "$rc" 0
manifest_digest=$out
expect_contains "import prints the manifest digest" "$manifest_digest" "sha256:"

# Importing the same tree again gives the same image.
run_kiln import "$rootfs" busybox:again
expect_eq "import is deterministic" "$out" "$manifest_digest"

run_kiln images
expect_eq "images exit" "$rc" 0
expect_contains "images lists the name" "$out" "busybox:kiln"
expect_contains "images shows the short digest" "$out" "${manifest_digest:7:12}"
expect_contains "images has a header" "$out" "NAME"

run_kiln inspect busybox:kiln
expect_eq "inspect exit" "$rc" 0
printf '%s' "$out" >"$T/inspect.json"
fields=$(python3 - "$T/inspect.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m, c = d["Manifest"], d["Config"]
print(d["Digest"])
print(d["Name"])
print(m["mediaType"], m["config"]["digest"] == d["ConfigDigest"], len(m["layers"]), m["layers"][0]["mediaType"])
print(c["os"], c["architecture"], c["rootfs"]["type"], len(c["rootfs"]["diff_ids"]), c["created"])
print(c["history"][0]["created_by"])
PY
)
expect_eq "inspect fields" "$fields" "$manifest_digest
docker.io/library/busybox:kiln
application/vnd.oci.image.manifest.v1+json True 1 application/vnd.oci.image.layer.v1.tar+gzip
linux amd64 layers 1 2023-11-14T22:13:20Z
kiln import"

run_kiln inspect nosuch:image
expect_eq "inspect unknown exit" "$rc" 1
expect_contains "inspect unknown message" "$err" "no image named docker.io/library/nosuch:image"

run_kiln tag busybox:kiln localhost:5000/tools/busybox:1.0
expect_eq "tag exit" "$rc" 0
run_kiln inspect localhost:5000/tools/busybox:1.0
expect_contains "tag points at the same manifest" "$out" "\"Digest\": \"$manifest_digest\""

# OCI archive: check it with umoci and skopeo, then load it into a fresh store.
run_kiln save busybox:kiln -o "$T/bb-oci.tar" --format oci
expect_eq "save oci exit" "$rc" 0
mkdir "$T/oci-layout"
tar -xf "$T/bb-oci.tar" -C "$T/oci-layout"
expect_eq "umoci sees the tag" "$(umoci ls --layout "$T/oci-layout")" "kiln"
skopeo_digest=$(skopeo inspect --format '{{.Digest}}' "oci-archive:$T/bb-oci.tar")
expect_eq "skopeo reads the oci archive" "$skopeo_digest" "$manifest_digest"
skopeo_os=$(skopeo inspect --format '{{.Os}}/{{.Architecture}}' "oci:$T/oci-layout")
expect_eq "skopeo reads the oci dir" "$skopeo_os" "linux/amd64"

run_kiln --root "$T/root-oci" load "$T/bb-oci.tar"
expect_eq "load oci exit" "$rc" 0
expect_contains "load oci names the image" "$out" "busybox:kiln"
run_kiln --root "$T/root-oci" inspect busybox:kiln
expect_contains "oci round trip keeps the digest" "$out" "\"Digest\": \"$manifest_digest\""

# Docker archive: check it with skopeo, load it into a fresh store. Layers travel
# uncompressed, so the config digest (docker's image ID) is what survives.
config_digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ConfigDigest"])' "$T/inspect.json")
run_kiln save localhost:5000/tools/busybox:1.0 -o "$T/bb-docker.tar" --format docker
expect_eq "save docker exit" "$rc" 0
tar -tf "$T/bb-docker.tar" >"$T/docker-list"
expect_contains "docker archive has manifest.json" "$(cat "$T/docker-list")" "manifest.json"
expect_contains "docker archive has repositories" "$(cat "$T/docker-list")" "repositories"
skopeo_tags=$(skopeo inspect --format '{{.Os}} {{.Architecture}} {{len .Layers}}' "docker-archive:$T/bb-docker.tar")
expect_eq "skopeo reads the docker archive" "$skopeo_tags" "linux amd64 1"
skopeo_config=$(skopeo inspect --config "docker-archive:$T/bb-docker.tar" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rootfs"]["diff_ids"][0])')
kiln_diff=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Config"]["rootfs"]["diff_ids"][0])' "$T/inspect.json")
expect_eq "docker archive keeps the diff_id" "$skopeo_config" "$kiln_diff"

run_kiln --root "$T/root-docker" load "$T/bb-docker.tar"
expect_eq "load docker exit" "$rc" 0
expect_contains "load docker names the image" "$out" "localhost:5000/tools/busybox:1.0"
run_kiln --root "$T/root-docker" inspect localhost:5000/tools/busybox:1.0
expect_contains "docker round trip keeps the config" "$out" "\"ConfigDigest\": \"$config_digest\""

# skopeo copies a kiln-saved image into an OCI directory; kiln loads that directory.
skopeo copy -q "oci-archive:$T/bb-oci.tar" "oci:$T/skopeo-oci:example.com/copied:v1"
run_kiln --root "$T/root-skopeo" load "$T/skopeo-oci"
expect_eq "load skopeo dir exit" "$rc" 0
expect_contains "load skopeo dir names the image" "$out" "example.com/copied:v1"
run_kiln --root "$T/root-skopeo" inspect example.com/copied:v1
expect_contains "skopeo copy keeps the config" "$out" "\"ConfigDigest\": \"$config_digest\""

# A corrupted archive is refused, and leaves nothing half-written.
mkdir "$T/bad"
tar -xf "$T/bb-oci.tar" -C "$T/bad"
layer=$(ls -S "$T/bad/blobs/sha256" | head -1)
printf 'x' >>"$T/bad/blobs/sha256/$layer"
run_kiln --root "$T/root-bad" load "$T/bad"
expect_eq "corrupt load exit" "$rc" 1
expect_contains "corrupt load message" "$err" "digest mismatch"
expect_eq "no temp files left" "$(ls -A "$T/root-bad/content/tmp")" ""

# rmi removes names; the content stays for a later prune.
run_kiln rmi busybox:kiln
expect_eq "rmi exit" "$rc" 0
expect_contains "rmi output" "$out" "Untagged: busybox:kiln"
run_kiln images
case "$out" in *"busybox:kiln "*) fail "rmi left the name" ;; esac
expect_contains "other names stay" "$out" "localhost:5000/tools/busybox:1.0"
run_kiln inspect "$manifest_digest"
expect_eq "content stays after rmi" "$rc" 0
run_kiln rmi busybox:kiln
expect_eq "rmi twice fails" "$rc" 1
expect_contains "rmi twice message" "$err" "no image named"

finish
