#!/usr/bin/env bash
# Faults between kiln and a registry: 500s that pass (retried with backoff), 500s that do
# not, a connection cut mid-blob (resumed with Range), and a blob whose bytes do not match
# its digest (refused, nothing left in the store). A python proxy injects the faults.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/registry_lib.sh"

reg_start faults
reg_busybox_rootfs "$T/rootfs"
# Random bytes so the layer is big and incompressible enough to be cut half-way.
head -c 300000 /dev/urandom >"$T/rootfs/random.bin"
run_kiln import "$T/rootfs" faults-test/busybox:1
local_digest=$out
run_kiln push faults-test/busybox:1 "$REG_HOST/f/busybox:1"
expect_eq "push ($err)" "$rc" "0"

pull_through() { # STORE_NAME HOST
	run_kiln --root "$T/$1" pull "$2/f/busybox:1"
}

# Two 500s on the manifest, then success.
reg_proxy_start "$REG_HOST" "$T/p500.log" --match /manifests/ --fail500 2
pull_through s1 "127.0.0.1:$PROXY_PORT"
expect_eq "pull through two 500s ($err)" "$rc" "0"
expect_eq "digest after retries" "$(echo "$out" | head -1)" "$local_digest"
expect_eq "two injected 500s" "$(grep -c ' 500 ' "$T/p500.log")" "2"
expect_eq "then a 200" "$(grep '/manifests/' "$T/p500.log" | tail -1 | cut -d' ' -f3)" "200"

# Two 500s on blobs too.
reg_proxy_start "$REG_HOST" "$T/p500b.log" --match /blobs/ --fail500 2
pull_through s2 "127.0.0.1:$PROXY_PORT"
expect_eq "pull through blob 500s ($err)" "$rc" "0"
expect_eq "two injected blob 500s" "$(grep -c ' 500 ' "$T/p500b.log")" "2"

# 429 Too Many Requests is retried the same way.
reg_proxy_start "$REG_HOST" "$T/p429.log" --match /blobs/ --fail500 2 --fail-code 429
pull_through s2b "127.0.0.1:$PROXY_PORT"
expect_eq "pull through 429s ($err)" "$rc" "0"
expect_eq "two injected 429s" "$(grep -c ' 429 ' "$T/p429.log")" "2"

# A registry that keeps failing: kiln gives up after its attempts with the status.
reg_proxy_start "$REG_HOST" "$T/pdead.log" --match /manifests/ --fail500 1000
pull_through s3 "127.0.0.1:$PROXY_PORT"
expect_eq "persistent 500 fails" "$rc" "1"
expect_contains "persistent 500 message" "$err" "HTTP 500"
expect_eq "bounded attempts" "$(grep -c ' 500 ' "$T/pdead.log")" "5"

# The connection drops half-way through the layer: kiln resumes with Range.
reg_proxy_start "$REG_HOST" "$T/pcut.log" --match /blobs/ --cut
pull_through s4 "127.0.0.1:$PROXY_PORT"
expect_eq "pull across a cut connection ($err)" "$rc" "0"
expect_eq "digest after the cut" "$(echo "$out" | head -1)" "$local_digest"
expect_eq "one cut" "$(grep -c ' cut ' "$T/pcut.log")" "1"
expect_contains "resumed with a Range request" "$(cat "$T/pcut.log")" " 206 bytes="
# And the next pull of the same image (new store) is clean.
pull_through s5 "127.0.0.1:$PROXY_PORT"
expect_eq "next pull succeeds ($err)" "$rc" "0"

# A server that ignores Range after the cut: kiln starts the blob over.
reg_proxy_start "$REG_HOST" "$T/pnorange.log" --match /blobs/ --cut --strip-range
pull_through s5b "127.0.0.1:$PROXY_PORT"
expect_eq "pull when Range is ignored ($err)" "$rc" "0"
expect_eq "digest after the restart" "$(echo "$out" | head -1)" "$local_digest"
expect_contains "asked for the rest, got it all" "$(cat "$T/pnorange.log")" " 200 bytes="

# A manifest served with a Content-Type that contradicts its mediaType is refused.
reg_proxy_start "$REG_HOST" "$T/pct.log" --manifest-type application/vnd.docker.distribution.manifest.v2+json
pull_through s7 "127.0.0.1:$PROXY_PORT"
expect_eq "conflicting Content-Type fails" "$rc" "1"
expect_contains "conflicting Content-Type message" "$err" "conflicts with Content-Type"

# The layers of an image download at the same time: two blobs in flight at once.
reg_proxy_start "$REG_HOST" "$T/pslow.log" --match /blobs/ --delay-ms 1500
pull_through s8 "127.0.0.1:$PROXY_PORT"
expect_eq "slow pull ($err)" "$rc" "0"
expect_eq "blobs in flight together" "$(cat "$T/pslow.log.inflight")" "2"

# Pushing again skips the blobs the registry has (HEAD 200, no upload).
reg_proxy_start "$REG_HOST" "$T/ppush.log"
run_kiln push faults-test/busybox:1 "127.0.0.1:$PROXY_PORT/f/busybox:again"
expect_eq "second push ($err)" "$rc" "0"
expect_eq "blobs checked with HEAD" "$(grep -c '^HEAD /v2/f/busybox/blobs/.* 200 ' "$T/ppush.log")" "2"
expect_eq "no blob uploaded" "$(grep -c '^POST\|^PATCH' "$T/ppush.log" || true)" "0"
expect_contains "manifest put by tag" "$(cat "$T/ppush.log")" "PUT /v2/f/busybox/manifests/again 201"

# Corrupt the layer in the registry's storage (same size, one byte changed).
layer=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	"http://$REG_HOST/v2/f/busybox/manifests/1" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
hex=${layer#sha256:}
data="$REG_DATA/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
cp "$data" "$T/layer.orig"
python3 - "$data" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0xff
open(p, "wb").write(bytes(b))
PY
pull_through s6 "$REG_HOST"
expect_eq "corrupt blob fails" "$rc" "1"
expect_contains "corrupt blob: digest mismatch" "$err" "digest mismatch"
expect_contains "corrupt blob: names it" "$err" "$hex"
expect_eq "no corrupt blob in the store" \
	"$([ -e "$T/s6/content/blobs/sha256/$hex" ] && echo yes || echo no)" "no"
expect_eq "no temp files left" "$(find "$T/s6/content/tmp" -type f 2>/dev/null | wc -l)" "0"
run_kiln --root "$T/s6" images
expect_eq "image not named after a failed pull" "$(echo "$out" | grep -c 'f/busybox' || true)" "0"

cp "$T/layer.orig" "$data"
pull_through s6 "$REG_HOST"
expect_eq "pull after repair ($err)" "$rc" "0"
expect_eq "the blob is there now" \
	"$([ -e "$T/s6/content/blobs/sha256/$hex" ] && echo yes || echo no)" "yes"

finish
