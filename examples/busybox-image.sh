#!/bin/sh
# Make the base image `busybox` offline, from Debian's busybox-static, and import it into
# kiln's store: a root filesystem with /bin/busybox, its applets, and /etc/passwd and
# /etc/group (root and nobody). Usage: examples/busybox-image.sh [path/to/kiln]
set -eu
KILN=${1:-build/kiln}
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || { echo "no $BUSYBOX: apt-get install busybox-static" >&2; exit 1; }
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
chmod 1777 "$rootfs/tmp"
cp "$BUSYBOX" "$rootfs/bin/busybox"
for applet in $("$BUSYBOX" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0} "$KILN" import "$rootfs" busybox
