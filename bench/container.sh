#!/usr/bin/env bash
# Benchmark: overhead of one container (setup, `true`, teardown) with `kiln run --rootfs`,
# median of RUNS runs on a busybox rootfs. Needs root and busybox-static.
# Usage: bench/container.sh [path/to/kiln]   (default: build/kiln)
set -euo pipefail
KILN=${1:-build/kiln}
RUNS=${RUNS:-50}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
R=$dir/rootfs
mkdir -p "$R/bin" "$R/etc" "$R/tmp"
cp /bin/busybox "$R/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ "$applet" = busybox ] || ln -s busybox "$R/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
echo 'root:x:0:' >"$R/etc/group"

for net in host none; do
	t=()
	for _ in $(seq "$RUNS"); do
		s=$(date +%s%N)
		"$KILN" run --network "$net" --rootfs "$R" /bin/true
		e=$(date +%s%N)
		t+=($(((e - s) / 1000)))
	done
	printf 'kiln run --network %-4s true: ' "$net"
	printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median %.2f ms (min %.2f ms, %d runs)\n", a[int((NR+1)/2)]/1000, a[1]/1000, NR}'
done
