#!/usr/bin/env bash
# Benchmark: pull a 200 MB, 5-layer image from a loopback registry (Debian's
# docker-registry) with `kiln pull` into an empty store, and with `skopeo copy` into an OCI
# layout, side by side. Prints the median of RUNS runs of each.
# Usage: bench/pull.sh [path/to/kiln]   (default: build/kiln)
set -euo pipefail
export KILN=$(realpath "${1:-build/kiln}")
export KILN_SRC=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
source "$KILN_SRC/tests/lib.sh"
source "$KILN_SRC/tests/integration/registry_lib.sh"
trap 'reg_cleanup; rm -rf "$T"' EXIT

# Five layers of 40 MB of random bytes (incompressible, so 200 MB cross the wire).
python3 - "$T/layout" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
root = sys.argv[1]
os.makedirs(f"{root}/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{root}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d
layers, diff_ids = [], []
for i in range(5):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        data = os.urandom(40 * 1024 * 1024)
        info = tarfile.TarInfo(f"layer{i}.bin"); info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    tar = raw.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    gz = gzip.compress(tar, compresslevel=1, mtime=0)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(gz), "size": len(gz)})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}}).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(cfg), "size": len(cfg)},
    "layers": layers}).encode()
idx = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": blob(man), "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "1"}}]}
json.dump(idx, open(f"{root}/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(f"{root}/oci-layout", "w"))
PY
reg_start bench
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$T/layout:1" "docker://$REG_HOST/bench/big:1"

median() { sort -n | awk '{a[NR]=$1} END {printf "%.2f s", a[int((NR+1)/2)]/1000}'; }
kiln_ms=() skopeo_ms=()
for i in $(seq "$RUNS"); do
	rm -rf "$T/kroot" "$T/sk"
	s=$(date +%s%N)
	"$KILN" --root "$T/kroot" pull "$REG_HOST/bench/big:1" >/dev/null
	e=$(date +%s%N)
	kiln_ms+=($(((e - s) / 1000000)))
	s=$(date +%s%N)
	skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REG_HOST/bench/big:1" "oci:$T/sk:1"
	e=$(date +%s%N)
	skopeo_ms+=($(((e - s) / 1000000)))
done
echo "pull of a 200 MB, 5-layer image from 127.0.0.1, median of $RUNS:"
echo "  kiln pull:                 $(printf '%s\n' "${kiln_ms[@]}" | median)"
echo "  skopeo copy (oci layout):  $(printf '%s\n' "${skopeo_ms[@]}" | median)"
