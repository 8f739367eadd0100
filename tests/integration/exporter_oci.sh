#!/usr/bin/env bash
# The exporter seen from outside: an image kiln builds, saved with `kiln save --format oci`,
# is read by skopeo and unpacked by umoci (which checks every blob and diff_id) with the
# build's changes: a deleted file gone (whiteout), hard links kept, owners and modes kept,
# the merged config. A rebuild from the cache gives the same image id.
source "$(dirname "$0")/../lib.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root (CI runs as root)"
[ -x /bin/busybox ] || { echo "FAIL: busybox-static is not installed" >&2; exit 1; }
command -v umoci >/dev/null || { echo "FAIL: umoci is not installed" >&2; exit 1; }
command -v skopeo >/dev/null || { echo "FAIL: skopeo is not installed" >&2; exit 1; }
"$KILN" build --help >/dev/null 2>&1 || skip "kiln build is not in this binary yet"

r="$T/busybox-rootfs"
mkdir -p "$r/bin" "$r/etc" "$r/tmp"
chmod 1777 "$r/tmp"
cp /bin/busybox "$r/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ "$applet" = busybox ] || ln -s busybox "$r/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\n' >"$r/etc/group"
echo "delete me" >"$r/etc/motd"
run_kiln import "$r" busybox
[ "$rc" -eq 0 ] || { echo "FAIL: kiln import: $err" >&2; exit 1; }

CTX="$T/ctx"
mkdir -p "$CTX"
echo "from the context" >"$CTX/hello.txt"
cat >"$CTX/Dockerfile" <<'DF'
FROM busybox
ENV GREETING=hi
LABEL org.example.team=kiln
RUN rm /etc/motd && mkdir -p /data && echo one >/data/a && ln /data/a /data/b \
    && chown 1234:5678 /data/a && chmod 0640 /data/a
WORKDIR /app
COPY hello.txt .
CMD ["cat", "/app/hello.txt"]
DF

export SOURCE_DATE_EPOCH=1700000000
run_kiln build -t exported:1 --iidfile "$T/iid" "$CTX"
expect_eq "build succeeds: $err" "$rc" 0
iid=$(cat "$T/iid")
run_kiln build -t exported:1 --iidfile "$T/iid2" "$CTX"
expect_eq "rebuild succeeds: $err" "$rc" 0
expect_eq "a cached rebuild gives the same image id" "$(cat "$T/iid2")" "$iid"

run_kiln save exported:1 -o "$T/img.tar" --format oci
expect_eq "kiln save --format oci: $err" "$rc" 0
mkdir "$T/oci"
tar -xf "$T/img.tar" -C "$T/oci"

# skopeo: the config, as kiln wrote it
cfg=$(skopeo inspect --config --raw "oci:$T/oci")
expect_contains "Env merged onto the base's" "$cfg" '"GREETING=hi"'
expect_contains "the base's PATH kept" "$cfg" '"PATH=/usr/local/sbin:'
expect_contains "label" "$cfg" '"org.example.team":"kiln"'
expect_contains "Cmd" "$cfg" '"Cmd":["cat","/app/hello.txt"]'
expect_contains "WorkingDir" "$cfg" '"WorkingDir":"/app"'
expect_contains "created is SOURCE_DATE_EPOCH" "$cfg" '"created":"2023-11-14T22:13:20Z"'
raw=$(skopeo inspect --raw "oci:$T/oci")
expect_contains "an OCI manifest" "$raw" '"mediaType":"application/vnd.oci.image.manifest.v1+json"'
expect_eq "config digest is the image id" \
	"$(printf '%s' "$raw" | grep -o '"config":{[^}]*}' | grep -o 'sha256:[0-9a-f]*')" "$iid"
nlayers=$(printf '%s' "$raw" | grep -o 'application/vnd.oci.image.layer.v1.tar+gzip' | wc -l)
expect_eq "base layer + RUN + WORKDIR + COPY" "$nlayers" 4
ndiff=$(printf '%s' "$cfg" | grep -o '"diff_ids":\[[^]]*\]' | grep -o 'sha256:' | wc -l)
expect_eq "one diff_id per layer" "$ndiff" 4

# umoci: unpack and look at the files
tag=$(umoci ls --layout "$T/oci" | head -n1)
set +e
umoci unpack --image "$T/oci:$tag" "$T/bundle" >"$T/umoci.log" 2>&1
urc=$?
set -e
expect_eq "umoci unpack: $(cat "$T/umoci.log")" "$urc" 0
rootfs="$T/bundle/rootfs"
[ -e "$rootfs/etc/motd" ] && fail "the deleted /etc/motd is back" || expect_eq "whiteout" ok ok
expect_eq "the COPY'd file" "$(cat "$rootfs/app/hello.txt")" "from the context"
expect_eq "hard link kept" "$(stat -c %i "$rootfs/data/a")" "$(stat -c %i "$rootfs/data/b")"
expect_eq "owner and mode kept" "$(stat -c '%u:%g %a' "$rootfs/data/a")" "1234:5678 640"
expect_eq "the base's files" "$(cat "$rootfs/etc/passwd")" "root:x:0:0:root:/root:/bin/sh"

finish
