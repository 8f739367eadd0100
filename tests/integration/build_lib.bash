# Sourced by tests/integration/build_*.sh after tests/lib.sh (not a test itself: no .sh).
# A busybox base image made offline in the test's own store (cp /bin/busybox, applet
# links, passwd/group -> kiln import), and helpers for reading build output.
[ "$(id -u)" -eq 0 ] || skip "needs root (CI runs as root)"
[ -x /bin/busybox ] || { echo "FAIL: busybox-static is not installed" >&2; exit 1; }

make_busybox() {
	local r="$T/busybox-rootfs"
	mkdir -p "$r/bin" "$r/etc" "$r/tmp"
	chmod 1777 "$r/tmp"
	cp /bin/busybox "$r/bin/busybox"
	for applet in $(/bin/busybox --list); do
		[ "$applet" = busybox ] || ln -s busybox "$r/bin/$applet"
	done
	cat >"$r/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
	cat >"$r/etc/group" <<'GR'
root:x:0:
app:x:1000:
nogroup:x:65534:
GR
	run_kiln import "$r" busybox
	[ "$rc" -eq 0 ] || { echo "FAIL: kiln import: $err" >&2; exit 1; }
}

# count_cached TEXT: the number of steps taken from the cache.
count_cached() { printf '%s\n' "$1" | grep -c '^#[0-9]* CACHED$' || true; }
