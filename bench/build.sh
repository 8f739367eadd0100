#!/usr/bin/env bash
# Benchmark: `kiln build` against `buildah build` (buildah 1.28, overlay storage, --layers)
# on the scenarios of issue 5, each RUNS times; prints the medians, their ratio, the
# target and kiln's peak RSS. Wall time is the whole build process, export included
# (both tag the result). Everything offline: the busybox base image is made from
# busybox-static, imported into a fresh kiln root and handed to buildah by `kiln save`
# as an oci-archive. Needs root, busybox-static, python3 and buildah (skipped if absent).
# Usage: bench/build.sh [path/to/kiln]   (default: build/kiln)
#   RUNS=N (default 5), ONLY="a b c" to run some scenarios, NO_BUILDAH=1.
set -euo pipefail
KILN=$(realpath "${1:-build/kiln}")
RUNS=${RUNS:-5}
ONLY=${ONLY:-a b c d e f}
T=$(mktemp -d /var/tmp/kiln-bench.XXXXXX)
BR=$T/buildah
cleanup() {
	# buildah leaves overlay mounts under its root; unmount before removing.
	if [ -d "$BR" ]; then
		{ grep -o " $BR/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	fi
	rm -rf "$T"
}
trap cleanup EXIT
HAVE_BUILDAH=1
command -v buildah >/dev/null && [ -z "${NO_BUILDAH:-}" ] || HAVE_BUILDAH=0

# measure OUT CMD...: run CMD with its output in $T/last.log; append "ms rss_kb" to OUT.
# Python starts before the clock, so only the build is timed; ru_maxrss of the children is
# the largest of kiln and what it waited for (its containers).
cat >"$T/measure.py" <<'PY'
import resource, subprocess, sys, time
out, log, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(log, "w") as f:
    s = time.monotonic()
    rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    e = time.monotonic()
if rc != 0:
    sys.stderr.write(open(log).read()[-3000:])
    sys.exit(f"failed ({rc}): {' '.join(cmd)}")
with open(out, "a") as f:
    f.write(f"{(e - s) * 1000:.0f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\n")
PY
measure() {
	local out=$1
	shift
	python3 "$T/measure.py" "$out" "$T/last.log" "$@"
}

kiln() { "$KILN" --root "$T/kroot" "$@"; }
bah() { buildah --root "$BR/root" --runroot "$BR/run" --storage-driver overlay "$@"; }
kbuild() { measure "$1" "$KILN" --root "$T/kroot" build --progress plain -t bench "${@:2}"; }
bbuild() { measure "$1" buildah --root "$BR/root" --runroot "$BR/run" --storage-driver overlay \
	bud --pull=never --layers --network host -t bench "${@:2}"; }

# The base image.
r=$T/rootfs
mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root"
chmod 1777 "$r/tmp"
cp /bin/busybox "$r/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ "$applet" = busybox ] || ln -s busybox "$r/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\n' >"$r/etc/group"
SOURCE_DATE_EPOCH=0 kiln import "$r" busybox >/dev/null
if [ "$HAVE_BUILDAH" = 1 ]; then
	kiln save busybox -o "$T/busybox.tar"
	bah pull -q "oci-archive:$T/busybox.tar" >/dev/null
fi
cp -a "$T/kroot" "$T/kroot.base" # a cold kiln root: the base image only

# The contexts.
mk() { mkdir -p "$T/$1" && cat >"$T/$1/Dockerfile"; }
mk a <<'DF'
FROM busybox AS s1
RUN sleep 1 && echo 1 >/r
FROM busybox AS s2
RUN sleep 1 && echo 2 >/r
FROM busybox AS s3
RUN sleep 1 && echo 3 >/r
FROM busybox AS s4
RUN sleep 1 && echo 4 >/r
FROM busybox
COPY --from=s1 /r /r1
COPY --from=s2 /r /r2
COPY --from=s3 /r /r3
COPY --from=s4 /r /r4
DF
{
	echo 'FROM busybox'
	for i in $(seq 20); do echo "RUN echo $i"; done
} | mk b
mk c <<'DF'
FROM busybox
COPY . /src
DF
python3 - "$T/c" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(200):
    p = f"{root}/d{d:03}"
    os.makedirs(p)
    for i in range(100):
        with open(f"{p}/f{i:03}.txt", "w") as f:
            f.write(f"file {d}/{i}\n" * 8)
for n in ("big1.bin", "big2.bin"):
    with open(f"{root}/{n}", "wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))
PY
mk d <<'DF'
FROM busybox
COPY deps /deps
RUN cat /deps/* >/installed && sleep 1
COPY src /app/src
RUN wc -l /app/src/* >/app/lines
DF
mkdir -p "$T/d/deps" "$T/d/src"
for i in $(seq 10); do echo "dep$i==1.$i" >"$T/d/deps/req$i.txt"; done
for i in $(seq 50); do seq "$i" >"$T/d/src/m$i.c"; done
mk e <<'DF'
FROM busybox
ARG V=0
RUN --mount=type=cache,target=/cache \
    if [ ! -f /cache/done ]; then sleep 2 && dd if=/dev/zero of=/cache/blob bs=1M count=20 2>/dev/null && touch /cache/done; fi; \
    echo "$V" >/v && ls /cache >/seen
DF
mk f <<'DF'
FROM busybox
RUN dd if=/dev/zero of=/big bs=1M count=300
DF

# run_k/run_b NAME PREP ARGS...: RUNS times, eval PREP (untimed, $I is the run), then
# time a build with ARGS.
run_k() {
	local name=$1 prep=$2
	shift 2
	: >"$T/k.$name"
	for i in $(seq "$RUNS"); do
		I=$i eval "$prep"
		kbuild "$T/k.$name" "$@"
	done
}
run_b() {
	local name=$1 prep=$2
	shift 2
	: >"$T/b.$name"
	[ "$HAVE_BUILDAH" = 1 ] || return 0
	for i in $(seq "$RUNS"); do
		I=$i eval "$prep"
		bbuild "$T/b.$name" "$@"
	done
}
cold_k() { rm -rf "$T/kroot" && cp -a "$T/kroot.base" "$T/kroot"; }
cold_b() { bah rmi -a -f >/dev/null 2>&1 || true; bah pull -q "oci-archive:$T/busybox.tar" >/dev/null; }

want() { [[ " $ONLY " == *" $1 "* ]]; }
ROWS=()
row() { ROWS+=("$1|$2|$3"); } # label|name|target seconds or -

if want a; then
	run_k a : --no-cache "$T/a"
	run_b a : --no-cache --jobs 4 "$T/a"
	row "a 4 parallel stages of sleep 1" a 1.15
fi
if want b; then
	run_k b : --no-cache "$T/b"
	run_b b : --no-cache "$T/b"
	row "b 20 RUN echo steps" b 0.4
fi
if want c; then
	run_k c1 cold_k "$T/c"
	run_b c1 cold_b "$T/c"
	row "c context 20k+2x100MB: cold" c1 -
	run_k c2 : "$T/c"
	run_b c2 : "$T/c"
	row "c   no-change rebuild" c2 0.05
	run_k c3 'echo "$RANDOM $I" >>"$T/c/d007/f042.txt"' "$T/c"
	run_b c3 'echo "$RANDOM $I" >>"$T/c/d007/f042.txt"' "$T/c"
	row "c   one small file changed" c3 1.0
fi
if want d; then
	kbuild /dev/null "$T/d"
	[ "$HAVE_BUILDAH" = 0 ] || bbuild /dev/null "$T/d"
	run_k d 'echo "// $RANDOM $I" >>"$T/d/src/m7.c"' "$T/d"
	run_b d 'echo "// $RANDOM $I" >>"$T/d/src/m7.c"' "$T/d"
	row "d deps layer, 1 source changed" d -
fi
if want e; then
	kbuild /dev/null --build-arg V=warm "$T/e"
	[ "$HAVE_BUILDAH" = 0 ] || bbuild /dev/null --build-arg V=warm "$T/e"
	run_k e 'export V=$RANDOM$I' --build-arg V "$T/e"
	run_b e 'export V=$RANDOM$I' --build-arg V "$T/e"
	row "e cache mount, step invalidated" e -
fi
if want f; then
	run_k f : --no-cache "$T/f"
	run_b f : --no-cache "$T/f"
	row "f RUN writing 300 MB" f -
fi

# median FILE COLUMN
median() { awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print ""}'; }
max() { awk -v c="$2" '{print $c}' "$1" | sort -n | tail -1; }
printf '\nkiln vs buildah %s, median of %s runs (wall time of the build, export included)\n' \
	"$([ "$HAVE_BUILDAH" = 1 ] && buildah --version | awk '{print $3}' || echo '-')" "$RUNS"
printf '%-34s %9s %9s %7s %7s %6s %9s\n' scenario kiln buildah ratio target met 'kiln RSS'
for r in "${ROWS[@]}"; do
	IFS='|' read -r label name target <<<"$r"
	k=$(median "$T/k.$name" 1)
	b=$(median "$T/b.$name" 1)
	rss=$(max "$T/k.$name" 2)
	awk -v l="$label" -v k="$k" -v b="$b" -v t="$target" -v rss="$rss" 'BEGIN {
		ks = k / 1000; bs = (b == "") ? "-" : sprintf("%.3fs", b / 1000)
		ratio = (b == "" || b == 0) ? "-" : sprintf("%.2fx", k / b)
		met = (t == "-") ? "" : ((ks <= t) ? "yes" : "NO")
		printf "%-34s %8.3fs %9s %7s %7s %6s %6.1f MB\n", l, ks, bs, ratio, (t == "-") ? "-" : t "s", met, rss / 1024
	}'
done
echo "ratio: kiln / buildah (below 1: kiln faster). RSS: ru_maxrss of kiln and its containers; target < 64 MB."
