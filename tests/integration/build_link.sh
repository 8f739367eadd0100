#!/usr/bin/env bash
# COPY --link: the copy does not depend on the steps below it. Changing an earlier RUN
# leaves the COPY --link step CACHED and its layer (digest and diff_id) the same in the
# image; the files are right; a --link copy over an existing directory merges (what was
# below stays); ADD --link too; the portable cache carries the link layer to a fresh
# store, where the --link steps are hits after the RUN changed again; --chown names
# are refused at the line. Also checked on the native snapshotter.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"
command -v python3 >/dev/null || { echo "FAIL: python3 is not installed" >&2; exit 1; }
make_busybox

CTX="$T/ctx"
mkdir -p "$CTX/app/sub"
echo "x from the context" >"$CTX/app/x"
echo "deep" >"$CTX/app/sub/deep"
echo "over" >"$CTX/over.txt"
write_df() {
	cat >"$CTX/Dockerfile" <<DF
FROM busybox
RUN echo $1 > /a && mkdir -p /etc/conf.d && echo below >/etc/conf.d/keep
COPY --link app /app
COPY --link over.txt /etc/conf.d/
ADD --link over.txt /added/
DF
}

# layers JSON-FILE: "digest diff_id" of each layer of the image in inspect's output.
layers() {
	python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def find(o, key):
    if isinstance(o, dict):
        if key in o:
            return o[key]
        for v in o.values():
            r = find(v, key)
            if r is not None:
                return r
    return None
ls = find(d, "layers")
ids = find(d, "diff_ids")
for l, i in zip(ls, ids):
    print(l["digest"], i)
PY
}

write_df v1
run_kiln build -t linked "$CTX"
expect_eq "first build: $err" "$rc" 0
run_kiln inspect linked
expect_eq "inspect: $err" "$rc" 0
printf '%s' "$out" >"$T/i1.json"
l1=$(layers "$T/i1.json")
expect_eq "busybox's layer and one per step" "$(printf '%s\n' "$l1" | wc -l)" 5
run_kiln run linked cat /app/x /app/sub/deep /a
expect_eq "the linked files are in the image" "$out" "$(printf 'x from the context\ndeep\nv1')"
run_kiln run linked cat /etc/conf.d/keep /etc/conf.d/over.txt /added/over.txt
expect_eq "a --link copy into an existing directory merges" "$out" \
	"$(printf 'below\nover\nover')"
run_kiln run linked ls /bin/busybox
expect_eq "the base is still there" "$rc" 0

# ---- the RUN below changes: the --link steps stay cached, their layers the same ----
write_df v2
run_kiln build -t linked "$CTX"
expect_eq "rebuild after the RUN changed: $err" "$rc" 0
expect_eq "the RUN reran" \
	"$(printf '%s\n' "$err" | grep -A1 '\] RUN echo v2' | grep -c CACHED || true)" 0
expect_contains "COPY --link app stays cached" \
	"$(printf '%s\n' "$err" | grep -A1 '\] COPY --link app /app')" "CACHED"
expect_contains "COPY --link over.txt stays cached" \
	"$(printf '%s\n' "$err" | grep -A1 '\] COPY --link over.txt')" "CACHED"
expect_contains "ADD --link stays cached" \
	"$(printf '%s\n' "$err" | grep -A1 '\] ADD --link over.txt')" "CACHED"
expect_contains "only the RUN's layer is compressed again" "$err" "exporting layers (gzip, 1 new of 4)"
run_kiln inspect linked
printf '%s' "$out" >"$T/i2.json"
l2=$(layers "$T/i2.json")
expect_eq "the RUN's layer changed" \
	"$(printf '%s\n' "$l2" | sed -n 2p | grep -c "$(printf '%s\n' "$l1" | sed -n 2p)" || true)" 0
expect_eq "the --link layers are the same blobs and diff_ids" \
	"$(printf '%s\n' "$l2" | sed -n '3,5p')" "$(printf '%s\n' "$l1" | sed -n '3,5p')"
run_kiln run linked cat /a /app/x /etc/conf.d/keep
expect_eq "the files after the rebuild" "$out" "$(printf 'v2\nx from the context\nbelow')"

# ---- a plain COPY (no --link) reruns when the RUN below changes ----
write_df v3
sed -i 's/COPY --link app/COPY app/' "$CTX/Dockerfile"
run_kiln build -t plain "$CTX"
expect_eq "build without --link: $err" "$rc" 0
expect_eq "a plain COPY reruns" \
	"$(printf '%s\n' "$err" | grep -A1 '\] COPY app /app' | grep -c CACHED || true)" 0

# ---- the portable cache carries the link layer ----
write_df v2
run_kiln build -t linked --cache-to "type=local,dest=$T/cache,mode=max" "$CTX"
expect_eq "build with --cache-to: $err" "$rc" 0
link_blob=$(printf '%s\n' "$l1" | sed -n 3p | cut -d' ' -f1)
[ -f "$T/cache/blobs/sha256/${link_blob#sha256:}" ] && expect_eq "the link layer is in the cache" ok ok ||
	fail "the link layer $link_blob is not in the exported cache"

# A fresh store with the cache: the RUN changes again, the --link steps are hits from the
# imported records and the image has the same link layers.
export KILN_ROOT="$T/root2"
run_kiln import "$T/busybox-rootfs" busybox
expect_eq "busybox in the fresh store: $err" "$rc" 0
write_df v4
run_kiln build -t linked --cache-from "type=local,src=$T/cache" "$CTX"
expect_eq "fresh store, cache imported: $err" "$rc" 0
expect_contains "imported: COPY --link app is a hit" \
	"$(printf '%s\n' "$err" | grep -A1 '\] COPY --link app /app')" "CACHED"
run_kiln inspect linked
printf '%s' "$out" >"$T/i4.json"
expect_eq "imported: the --link layers are the same" \
	"$(layers "$T/i4.json" | sed -n '3,5p')" "$(printf '%s\n' "$l1" | sed -n '3,5p')"
run_kiln run linked cat /a /app/sub/deep /etc/conf.d/keep
expect_eq "imported: the files" "$out" "$(printf 'v4\ndeep\nbelow')"
export KILN_ROOT="$T/root"

# ---- --chown with a name is refused with --link ----
cat >"$T/Dockerfile.chown" <<'DF'
FROM busybox
COPY --link --chown=app app /app
DF
run_kiln build -f "$T/Dockerfile.chown" "$CTX"
expect_eq "--link --chown=NAME fails" "$rc" 1
expect_contains "at its line" "$err" "Dockerfile.chown:2:"
expect_contains "saying why" "$err" "names cannot be looked up with --link"
cat >"$T/Dockerfile.chown" <<'DF'
FROM busybox
COPY --link --chown=1000:1000 app /app
DF
run_kiln build -t owned -f "$T/Dockerfile.chown" "$CTX"
expect_eq "--link --chown=ids: $err" "$rc" 0
run_kiln run owned stat -c '%u:%g' /app/x
expect_eq "numeric owner applied" "$out" "1000:1000"

# ---- the native snapshotter: the same layers ----
write_df v1
run_kiln --snapshotter=native build -t native "$CTX"
expect_eq "native build: $err" "$rc" 0
run_kiln --snapshotter=native run native cat /etc/conf.d/keep /app/x
expect_eq "native: merged files" "$out" "$(printf 'below\nx from the context')"
write_df v2
run_kiln --snapshotter=native build -t native "$CTX"
expect_eq "native rebuild: $err" "$rc" 0
expect_contains "native: COPY --link stays cached" \
	"$(printf '%s\n' "$err" | grep -A1 '\] COPY --link app /app')" "CACHED"
run_kiln --snapshotter=native inspect native
printf '%s' "$out" >"$T/n2.json"
# (COPY app /app only: the other copies create parent directories, which get the time
# of the copy, as in BuildKit without SOURCE_DATE_EPOCH.)
expect_eq "native: the COPY --link app layer is the overlay build's" \
	"$(layers "$T/n2.json" | sed -n 3p)" "$(printf '%s\n' "$l1" | sed -n 3p)"

finish
