#!/usr/bin/env bash
# kiln build -o as buildx: an OCI archive that skopeo reads and copies and umoci unpacks
# into a bundle runc runs (the image's CMD prints); an OCI layout directory (tar=false);
# a docker archive podman loads; zstd layers skopeo and umoci read; Docker media types;
# force-compression; local and tar outputs; --metadata-file; the config as BuildKit
# writes it (HEALTHCHECK, SHELL, ONBUILD, ... and empty_layer history) in OCI output.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"
for tool in skopeo umoci runc podman python3 zstd; do
	command -v $tool >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done
make_busybox

CTX="$T/ctx"
mkdir -p "$CTX"
echo "from the context" >"$CTX/hello.txt"
cat >"$CTX/Dockerfile" <<'DF'
FROM busybox
LABEL org.example.team=kiln
ENV GREETING=hello
RUN mkdir -p /data && echo "$GREETING from the image" >/data/msg
RUN head -c 1500000 /dev/urandom >/data/rand && head -c 1500000 /dev/urandom | base64 >/data/b64
COPY hello.txt /data/
WORKDIR /data
USER 0:0
EXPOSE 8080/tcp
VOLUME /cache
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=2s CMD cat /data/msg
SHELL ["/bin/sh", "-c"]
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /data/msg /data/hello.txt"]
DF

run_kiln build -t outputs:1 --metadata-file "$T/md.json" \
	-o "type=oci,dest=$T/img.tar" \
	-o "type=oci,dest=$T/layout,tar=false,name=outputs:dir" \
	-o "type=docker,dest=$T/docker.tar" \
	-o "type=oci,dest=$T/zstd.tar,compression=zstd,force-compression=true" \
	-o "type=local,dest=$T/files" \
	-o "type=tar,dest=$T/files.tar" "$CTX"
expect_eq "build with six outputs: $err" "$rc" 0

# --metadata-file: the first image output's digests, as buildx writes them
md=$(cat "$T/md.json")
raw=$(skopeo inspect --raw "oci-archive:$T/img.tar")
mdigest=sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)
expect_contains "containerimage.digest is the archive's manifest" "$md" \
	"\"containerimage.digest\": \"$mdigest\""
cfgd=$(printf '%s' "$raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["digest"])')
expect_contains "containerimage.config.digest" "$md" "\"containerimage.config.digest\": \"$cfgd\""
expect_contains "containerimage.descriptor" "$md" '"mediaType": "application/vnd.oci.image.manifest.v1+json"'
expect_contains "image.name" "$md" '"image.name": "outputs:1"'

# skopeo reads the OCI archive; the name is in the index
insp=$(skopeo inspect "oci-archive:$T/img.tar")
expect_contains "skopeo inspect oci-archive:" "$insp" "\"Digest\": \"$mdigest\""
idx=$(tar -xOf "$T/img.tar" index.json)
expect_contains "ref.name annotation" "$idx" '"org.opencontainers.image.ref.name":"1"'
expect_contains "image name annotation" "$idx" '"io.containerd.image.name":"docker.io/library/outputs:1"'
set +e
skopeo copy "oci-archive:$T/img.tar" "oci:$T/copied:outputs" >"$T/copy.log" 2>&1
crc=$?
set -e
expect_eq "skopeo copy: $(cat "$T/copy.log")" "$crc" 0
expect_eq "skopeo copy keeps the manifest" \
	"$(skopeo inspect --format '{{.Digest}}' "oci:$T/copied:outputs")" "$mdigest"

# the config: what BuildKit records, HEALTHCHECK/SHELL/ONBUILD kept in OCI output too
cfg=$(skopeo inspect --config --raw "oci-archive:$T/img.tar")
check_cfg() { printf '%s' "$cfg" | python3 -c "import json,sys; c=json.load(sys.stdin); print(json.dumps($1, sort_keys=True))"; }
expect_eq "platform" "$(check_cfg '[c["os"], c["architecture"]]')" '["linux", "amd64"]'
expect_eq "Env" "$(check_cfg 'c["config"]["Env"]')" \
	'["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello"]'
expect_eq "Entrypoint" "$(check_cfg 'c["config"]["Entrypoint"]')" '["/bin/sh", "-c"]'
expect_eq "Cmd" "$(check_cfg 'c["config"]["Cmd"]')" '["cat /data/msg /data/hello.txt"]'
expect_eq "WorkingDir" "$(check_cfg 'c["config"]["WorkingDir"]')" '"/data"'
expect_eq "User" "$(check_cfg 'c["config"]["User"]')" '"0:0"'
expect_eq "Labels" "$(check_cfg 'c["config"]["Labels"]')" '{"org.example.team": "kiln"}'
expect_eq "ExposedPorts" "$(check_cfg 'c["config"]["ExposedPorts"]')" '{"8080/tcp": {}}'
expect_eq "Volumes" "$(check_cfg 'c["config"]["Volumes"]')" '{"/cache": {}}'
expect_eq "StopSignal" "$(check_cfg 'c["config"]["StopSignal"]')" '"SIGINT"'
expect_eq "Healthcheck" "$(check_cfg 'c["config"]["Healthcheck"]["Test"]')" \
	'["CMD-SHELL", "cat /data/msg"]'
expect_eq "Healthcheck interval" "$(check_cfg 'c["config"]["Healthcheck"]["Interval"]')" 5000000000
expect_eq "Shell" "$(check_cfg 'c["config"]["Shell"]')" '["/bin/sh", "-c"]'
expect_eq "OnBuild" "$(check_cfg 'c["config"]["OnBuild"]')" '["RUN echo child"]'
expect_eq "diff_ids: base + 2 RUN + COPY + WORKDIR" "$(check_cfg 'len(c["rootfs"]["diff_ids"])')" 5
expect_eq "one non-empty history entry per layer" \
	"$(check_cfg 'len([h for h in c["history"] if not h.get("empty_layer")])')" 5
expect_eq "metadata-only steps are empty_layer" \
	"$(check_cfg '[h["created_by"].split()[0] for h in c["history"] if h.get("empty_layer")][:4]')" \
	'["LABEL", "ENV", "USER", "EXPOSE"]'
expect_contains "created_by per instruction" "$(check_cfg '[h["created_by"] for h in c["history"]]')" \
	'RUN /bin/sh -c mkdir -p /data'

# umoci unpacks it (Go's gzip reader, every diff_id checked: the 3.5 MB layer has stored,
# Huffman-only and deflated chunks); runc runs the image's CMD
mkdir "$T/oci"
tar -xf "$T/img.tar" -C "$T/oci"
set +e
umoci unpack --image "$T/oci:1" "$T/bundle" >"$T/umoci.log" 2>&1
urc=$?
set -e
expect_eq "umoci unpack: $(cat "$T/umoci.log")" "$urc" 0
python3 - "$T/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
json.dump(c, open(p, "w"))
PY
set +e
out=$(timeout 30 runc --root "$T/runc" run -b "$T/bundle" "kiln-test-$$" 2>"$T/runc.log")
rrc=$?
set -e
expect_eq "runc run: $(cat "$T/runc.log")" "$rrc" 0
expect_eq "runc runs the image's CMD" "$out" "hello from the image
from the context"

# tar=false: a layout directory, named
expect_eq "oci layout directory" "$(skopeo inspect --format '{{.Digest}}' "oci:$T/layout:dir")" "$mdigest"

# zstd with force-compression: every layer zstd, readable by skopeo and umoci
zraw=$(skopeo inspect --raw "oci-archive:$T/zstd.tar")
expect_eq "all layers zstd" "$(printf '%s' "$zraw" | grep -o 'layer.v1.tar+zstd' | wc -l)" 5
expect_eq "no gzip layer left" "$(printf '%s' "$zraw" | grep -c 'tar+gzip' || true)" 0
zcfg=$(skopeo inspect --config --raw "oci-archive:$T/zstd.tar")
expect_eq "zstd image: the same diff_ids" \
	"$(printf '%s' "$zcfg" | grep -o '"diff_ids":\[[^]]*\]')" \
	"$(printf '%s' "$cfg" | grep -o '"diff_ids":\[[^]]*\]')"
# every zstd blob decompresses (zstd -d) to its diff_id
mkdir "$T/zoci"
tar -xf "$T/zstd.tar" -C "$T/zoci"
zlayers=$(printf '%s' "$zraw" | python3 -c 'import json,sys; print(" ".join(l["digest"][7:] for l in json.load(sys.stdin)["layers"]))')
zdiffs=""
for l in $zlayers; do
	zdiffs="$zdiffs sha256:$(zstd -dc "$T/zoci/blobs/sha256/$l" | sha256sum | cut -d' ' -f1)"
done
expect_eq "zstd blobs decompress to the diff_ids" "$zdiffs" \
	"$(printf '%s' "$zcfg" | python3 -c 'import json,sys; print("", " ".join(json.load(sys.stdin)["rootfs"]["diff_ids"]))')"
# umoci 0.4 knows no zstd: skopeo reads the zstd layers and writes them as gzip for it
set +e
skopeo copy --dest-compress-format gzip "oci-archive:$T/zstd.tar" "oci:$T/zgz:z" \
	>"$T/zcopy.log" 2>&1
crc=$?
set -e
expect_eq "skopeo reads and copies the zstd image: $(cat "$T/zcopy.log")" "$crc" 0
set +e
umoci unpack --image "$T/zgz:z" "$T/zbundle" >"$T/zumoci.log" 2>&1
urc=$?
set -e
expect_eq "umoci unpacks what skopeo made of it: $(cat "$T/zumoci.log")" "$urc" 0
expect_eq "zstd image's files" "$(cat "$T/zbundle/rootfs/data/msg")" "hello from the image"

# the docker archive: podman loads it (own storage, vfs: nothing global is touched)
pod=(timeout 60 podman --root "$T/podman" --runroot "$T/podman-run" --storage-driver vfs
	--cgroup-manager cgroupfs --events-backend none)
set +e
pout=$("${pod[@]}" load -i "$T/docker.tar" 2>&1)
prc=$?
set -e
expect_eq "podman load: $pout" "$prc" 0
expect_contains "podman names it" "$pout" "outputs:1"
expect_contains "podman: the image id is the config digest" \
	"$("${pod[@]}" images --no-trunc --format '{{.ID}}' 2>&1)" "${cfgd#sha256:}"

# Docker media types: type=docker's default, and oci-mediatypes=false
run_kiln build -o "type=image,name=outputs:docker,oci-mediatypes=false" "$CTX"
expect_eq "oci-mediatypes=false: $err" "$rc" 0
run_kiln inspect outputs:docker
expect_contains "docker manifest v2 schema 2" "$out" \
	'"mediaType": "application/vnd.docker.distribution.manifest.v2+json"'
expect_contains "docker layer type" "$out" 'application/vnd.docker.image.rootfs.diff.tar.gzip'
expect_contains "docker config type" "$out" 'application/vnd.docker.container.image.v1+json'

# local and tar: the final stage's files
expect_eq "type=local" "$(cat "$T/files/data/msg")" "hello from the image"
expect_contains "type=tar" "$(tar -tf "$T/files.tar")" "data/hello.txt"
expect_eq "type=tar content" "$(tar -xOf "$T/files.tar" data/msg)" "hello from the image"
run_kiln build -o - "$CTX"
expect_eq "-o - writes a tar to stdout: $err" "$rc" 0
expect_contains "-o - is a tar" "$(tar -tf "$T/stdout")" "data/msg"

# bad specs are usage errors
run_kiln build -o "type=oci" "$CTX"
expect_eq "oci without dest" "$rc" 2
expect_contains "says dest" "$err" "dest= is required"
run_kiln build -o "type=image,compression=lz4" "$CTX"
expect_eq "unknown compression" "$rc" 2
run_kiln build -o "type=registry" "$CTX"
expect_eq "push without a name" "$rc" 2
expect_contains "says name" "$err" "needs a name"

finish
