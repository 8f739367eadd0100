#!/usr/bin/env bash
# The segment cache: after a one-file change in a context with big files, the rebuild's
# export takes the big files' compressed chunks (and the unchanged small files' ones) from
# the cache instead of compressing them again ("MB reused" in --progress plain), and the
# image is byte for byte the one a clean build in an empty store makes of the same context.
# A damaged cache entry is not used: the image stays the same. kiln du shows the cache and
# kiln prune --all empties it.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"

CTX="$T/ctx"
mkdir -p "$CTX"
printf 'FROM busybox\nCOPY . /src\n' >"$CTX/Dockerfile"
# two big compressible files (6 MB each: segments of their own) and 400 small ones
python3 - "$CTX" <<'PY'
import os, sys
root = sys.argv[1]
for n, start in (("big1.txt", 1), ("big2.txt", 7000000)):
    with open(f"{root}/{n}", "w") as f:
        i = start
        while f.tell() < 6 << 20:
            f.write(f"{i} line of a big text file\n")
            i += 1
for d in range(4):
    os.makedirs(f"{root}/d{d}")
    for i in range(100):
        with open(f"{root}/d{d}/f{i}.txt", "w") as f:
            f.write(f"small file {d}/{i}\n" * 20)
PY
touch -d @1600000000 "$CTX"/*.txt "$CTX"/d*/*
export SOURCE_DATE_EPOCH=1700000000

build_in() { # ROOT -> $digest, the manifest digest
	KILN_ROOT="$1"
	export KILN_ROOT
	if [ ! -d "$1" ]; then
		if [ -d "$T/busybox-rootfs" ]; then
			run_kiln import "$T/busybox-rootfs" busybox
		else
			make_busybox
		fi
	fi
	run_kiln build --progress plain --metadata-file "$T/md.json" \
		-o "type=image,name=seg,rewrite-timestamp=true" "$CTX"
	expect_eq "build in $1: $err" "$rc" 0
	digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["containerimage.digest"])' "$T/md.json")
}

build_in "$T/root1"
expect_eq "a first build reuses nothing" "$(grep -c 'MB reused' <<<"$err")" 0
seg_dir="$T/root1/exporter/segments/gzip-6"
n1=$(find "$seg_dir" -type f | wc -l)
expect_eq "the first export filled the segment cache" "$([ "$n1" -ge 12 ] && echo yes)" yes

# one small file changed
echo "changed" >>"$CTX/d2/f42.txt"
touch -d @1600000000 "$CTX/d2/f42.txt"
build_in "$T/root1"
rebuilt=$digest
reused=$(grep -o '[0-9.]* MB reused' <<<"$err" | cut -d' ' -f1)
expect_eq "the rebuild reused the big files' segments (${reused:-none} MB)" \
	"$(awk -v r="${reused:-0}" 'BEGIN {print (r >= 12.5) ? "yes" : "no"}')" yes

# a clean build of the same context in an empty store: the same image
build_in "$T/root2"
expect_eq "the rebuild's image is the clean build's" "$rebuilt" "$digest"
expect_eq "the clean build reused nothing" "$(grep -c 'MB reused' <<<"$err")" 0

# damaged entries (a flipped byte, a torn end) are not used, and the image stays the same
for f in $(find "$seg_dir" -type f | sort | head -6); do
	python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(200); b = f.read(1); f.seek(200); f.write(bytes([b[0] ^ 1]))' "$f"
done
for f in $(find "$seg_dir" -type f | sort | tail -3); do
	truncate -s -50 "$f"
done
echo "changed again" >>"$CTX/d2/f42.txt"
touch -d @1600000000 "$CTX/d2/f42.txt"
build_in "$T/root1"
damaged=$digest
build_in "$T/root3"
expect_eq "a rebuild over damaged entries makes the clean build's image" "$damaged" "$digest"

# the layer, made of reused segments, is a good gzip for Go's reader: umoci unpacks it
# (checking every diff_id) and the big files come out whole
KILN_ROOT="$T/root1" run_kiln save seg -o "$T/seg.tar"
expect_eq "save: $err" "$rc" 0
for tool in skopeo umoci; do
	command -v $tool >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done
ok=yes
skopeo copy -q "oci-archive:$T/seg.tar" "oci:$T/segoci:x" >"$T/skopeo.log" 2>&1 || ok=no
expect_eq "skopeo reads the image: $(cat "$T/skopeo.log")" "$ok" yes
umoci unpack --image "$T/segoci:x" "$T/segbundle" >"$T/umoci.log" 2>&1 || ok=no
expect_eq "umoci unpacks it: $(cat "$T/umoci.log")" "$ok" yes
expect_eq "a big file comes out whole" "$(cmp "$T/segbundle/rootfs/src/big2.txt" "$CTX/big2.txt" && echo same)" same
expect_eq "the changed file too" "$(cmp "$T/segbundle/rootfs/src/d2/f42.txt" "$CTX/d2/f42.txt" && echo same)" same

# du shows it, prune --all empties it
KILN_ROOT="$T/root1" run_kiln du
expect_contains "du shows the segment cache" "$out" "Segment cache:"
KILN_ROOT="$T/root1" run_kiln prune --all
expect_eq "prune: $err" "$rc" 0
expect_eq "prune --all empties the segment cache" "$(find "$seg_dir" -type f | wc -l)" 0
finish
