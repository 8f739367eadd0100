#!/usr/bin/env bash
# Benchmark: export the image of a RUN that writes ~325 MB (150 MB from /dev/urandom, ~147 MB
# of base64 text of random bytes, ~20 MB of `seq`: incompressible, half-compressible and
# very compressible) to an OCI archive:
#   kiln build -o type=oci,dest=X.tar            (gzip; the RUN is cached, so this is the export)
#   kiln build -o type=oci,...,compression=zstd
#   buildah push IMAGE oci-archive:X.tar          (the same Dockerfile built by buildah 1.28
#                                                  in its own temp root, base image offline)
#   kiln, unchanged rebuild: re-exports without compressing anything again
# Each figure is the median of RUNS runs of the whole command; kiln's layer records and
# segment cache are removed before each timed run so it compresses again. Sizes are of the archives.
# Usage: bench/export.sh [path/to/kiln]   (default: build/kiln; use a Release build)
set -euo pipefail
export KILN=$(realpath "${1:-build/kiln}")
export KILN_SRC=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
source "$KILN_SRC/tests/lib.sh"
source "$KILN_SRC/tests/integration/build_lib.bash"
BUILDAH=(buildah --root "$T/buildah" --runroot "$T/buildah-run" --storage-driver vfs)
trap '"${BUILDAH[@]}" rm -a >/dev/null 2>&1 || true; umount -R "$T/buildah" 2>/dev/null || true; rm -rf "$T"' EXIT
command -v buildah >/dev/null || { echo "buildah is not installed" >&2; exit 1; }

export SOURCE_DATE_EPOCH=1700000000 # the same config each run, so archives compare
make_busybox
"$KILN" save busybox --format oci -o "$T/busybox.tar"
mkdir -p "$T/ctx"
cat >"$T/ctx/Dockerfile" <<'DF'
ARG BASE=busybox
FROM $BASE
RUN mkdir /data && dd if=/dev/urandom of=/data/random bs=1M count=150 2>/dev/null \
    && head -c 110000000 /dev/urandom | base64 >/data/text && seq 1 3000000 >/data/seq
CMD ["ls", "-l", "/data"]
DF

# The RUN once; its layer stored uncompressed (a compression the timed runs do not use).
"$KILN" build -q -o type=image,name=bench:1,compression=uncompressed "$T/ctx" >/dev/null
"${BUILDAH[@]}" bud -q --isolation chroot --build-arg BASE="oci-archive:$T/busybox.tar" \
	-t bench:1 "$T/ctx" >/dev/null

# Each timed command starts with the page cache's dirty data written out, so one run's
# writeback does not slow the next. Wall time and CPU time (user + sys) are both kept: on
# a shared machine the CPU time is the steadier figure.
declare -A wall cpu
timed() { # NAME CMD...
	local name=$1
	shift
	sync
	/usr/bin/time -f "%e %U %S" -o "$T/time" "$@" >/dev/null 2>"$T/$name.log"
	read -r e u s <"$T/time"
	wall[$name]+="$e "
	cpu[$name]+="$(awk -v u="$u" -v s="$s" 'BEGIN {print u + s}') "
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# The layer records and the segment cache (compressed chunks) both go, so every timed
# export compresses everything again: this measures a cold export.
drop_records() {
	find "$KILN_ROOT/exporter" -name "*.$1-*.json" -delete 2>/dev/null || true
	rm -rf "$KILN_ROOT/exporter/segments"
}
for i in $(seq "$RUNS"); do
	rm -f "$T"/kiln-*.tar "$T"/buildah-*.tar
	drop_records gzip
	timed kg "$KILN" build -o "type=oci,dest=$T/kiln-gzip.tar" "$T/ctx"
	drop_records zstd
	timed kz "$KILN" build -o "type=oci,dest=$T/kiln-zstd.tar,compression=zstd" "$T/ctx"
	timed kc "$KILN" build -o "type=oci,dest=$T/kiln-again.tar" "$T/ctx"
	timed bg "${BUILDAH[@]}" push -q bench:1 "oci-archive:$T/buildah-gzip.tar"
	timed bz "${BUILDAH[@]}" push -q --compression-format zstd bench:1 \
		"oci-archive:$T/buildah-zstd.tar"
done
grep -q "gzip, 0 new of" "$T/kc.log" || { echo "the unchanged rebuild compressed again" >&2; exit 1; }
cmp -s "$T/kiln-gzip.tar" "$T/kiln-again.tar" || { echo "the re-export differs" >&2; exit 1; }

size() { stat -c %s "$1" | awk '{printf "%.1f MB", $1/1e6}'; }
row() { # LABEL KEY FILE NOTE
	printf '  %-42s %6.2f s %6.2f s  %9s  %s\n' "$1" "$(echo "${wall[$2]}" | median)" \
		"$(echo "${cpu[$2]}" | median)" "$(size "$3")" "$4"
}
ratio() { awk -v a="$(echo "${wall[$1]}" | median)" -v b="$(echo "${wall[$2]}" | median)" \
	'BEGIN {printf "%.1fx", a / b}'; }
echo "export of a ~325 MB RUN layer to an OCI archive, median of $RUNS, $(nproc) CPUs:"
printf '  %-42s %8s %8s  %9s\n' "" wall cpu size
row "buildah push oci-archive: (gzip)" bg "$T/buildah-gzip.tar" ""
row "buildah push --compression-format zstd" bz "$T/buildah-zstd.tar" ""
row "kiln build -o type=oci (gzip)" kg "$T/kiln-gzip.tar" "$(ratio bg kg) faster than buildah gzip"
row "kiln build -o type=oci,compression=zstd" kz "$T/kiln-zstd.tar" \
	"$(ratio bg kz) faster than buildah gzip"
row "kiln, unchanged rebuild (no compression)" kc "$T/kiln-again.tar" \
	"same bytes as the gzip archive"
