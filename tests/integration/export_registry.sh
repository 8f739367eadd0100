#!/usr/bin/env bash
# kiln build pushes: --push, -o type=registry and -o type=image,push=true send the image to
# a loopback docker-registry, where skopeo sees the manifest digest the build reported
# (--metadata-file), and kiln pulls it back into an empty store unchanged.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/registry_lib.sh"
source "$(dirname "$0")/build_lib.bash"
command -v skopeo >/dev/null || { echo "FAIL: skopeo is not installed" >&2; exit 1; }

reg_start push
make_busybox
CTX="$T/ctx"
mkdir -p "$CTX"
cat >"$CTX/Dockerfile" <<'DF'
FROM busybox
RUN echo pushed >/msg
CMD ["cat", "/msg"]
DF

digest_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["containerimage.digest"])' "$1"; }

# --push with -t
run_kiln build --push -t "$REG_HOST/kiln/app:1" --metadata-file "$T/md1.json" "$CTX"
expect_eq "build --push: $err" "$rc" 0
d1=$(digest_of "$T/md1.json")
expect_eq "skopeo sees the pushed manifest" \
	"$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REG_HOST/kiln/app:1")" "$d1"
run_kiln images
expect_contains "--push also names it in the store" "$out" "$REG_HOST/kiln/app"

# type=registry with zstd and its own name
run_kiln build -o "type=registry,name=$REG_HOST/kiln/app:zstd,compression=zstd" \
	--metadata-file "$T/md2.json" "$CTX"
expect_eq "type=registry zstd: $err" "$rc" 0
d2=$(digest_of "$T/md2.json")
raw=$(skopeo inspect --tls-verify=false --raw "docker://$REG_HOST/kiln/app:zstd")
expect_eq "zstd manifest digest in the registry" "sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)" "$d2"
expect_contains "the new layer is zstd" "$raw" "application/vnd.oci.image.layer.v1.tar+zstd"
set +e
skopeo copy --src-tls-verify=false "docker://$REG_HOST/kiln/app:zstd" "oci:$T/pulled:z" \
	>"$T/copy.log" 2>&1
crc=$?
set -e
expect_eq "skopeo copies the zstd image out of the registry: $(cat "$T/copy.log")" "$crc" 0

# type=image,push=true, two names at once
run_kiln build -o "type=image,\"name=$REG_HOST/kiln/a:1,$REG_HOST/kiln/b:1\",push=true" \
	--metadata-file "$T/md3.json" "$CTX"
expect_eq "type=image,push=true: $err" "$rc" 0
d3=$(digest_of "$T/md3.json")
expect_eq "first name pushed" \
	"$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REG_HOST/kiln/a:1")" "$d3"
expect_eq "second name pushed" \
	"$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REG_HOST/kiln/b:1")" "$d3"
expect_contains "image.name lists both" "$(cat "$T/md3.json")" "$REG_HOST/kiln/a:1,$REG_HOST/kiln/b:1"

# pulled back into an empty store: the same digest
run_kiln --root "$T/store2" pull "$REG_HOST/kiln/app:1"
expect_eq "pull back: $err" "$rc" 0
expect_eq "pulled digest" "$(echo "$out" | head -1)" "$d1"

finish
