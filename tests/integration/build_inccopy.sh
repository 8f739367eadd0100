#!/usr/bin/env bash
# The incremental COPY: after one file of the context changed, COPY . /src runs on a
# hard-link clone of its previous result and writes only that file. The image has the new
# content, the old snapshot is byte for byte what it was, unchanged files share their
# inodes with it, and the COPY layer's diff_id is the one a --no-cache build makes in a
# fresh store. What a clone cannot follow (a deleted source, a file turned directory, a
# changed file with hard links) copies in full and still gives that layer; --chmod and
# --chown are new steps. A kill -9 during an incremental copy leaves nothing a later build
# trusts.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"
command -v python3 >/dev/null || { echo "FAIL: python3 is not installed" >&2; exit 1; }
make_busybox
# Every file time is kept up to this; the copy itself adds none but the parents'.
export SOURCE_DATE_EPOCH=$(($(date +%s) + 86400))
S="$KILN_ROOT/snapshots/overlayfs"

CTX="$T/ctx"
for d in 1 2 3 4 5; do
	mkdir -p "$CTX/d$d/sub"
	for f in 1 2 3 4 5 6 7 8; do echo "file $d/$f" >"$CTX/d$d/f$f.txt"; done
	echo "deep $d" >"$CTX/d$d/sub/deep"
done
ln -s ../d2/f1.txt "$CTX/d1/link"
ln "$CTX/d3/f1.txt" "$CTX/d3/hard"
chmod 0750 "$CTX/d4"
cat >"$CTX/Dockerfile" <<'DF'
FROM busybox
COPY . /src
DF
touch -h -d '2021-03-04 05:06:07' $(find "$CTX" -mindepth 1)
# Entries changed within a second of a copy are always written again (a change in the
# same timestamp tick would go unseen); let the context settle first.
sleep 2

# diff_ids IMAGE: the image's layer diff_ids, one a line.
diff_ids() {
	run_kiln inspect "$1"
	printf '%s' "$out" | python3 -c '
import json, sys
def find(o, key):
    if isinstance(o, dict):
        if key in o:
            return o[key]
        for v in o.values():
            r = find(v, key)
            if r is not None:
                return r
    return None
print("\n".join(find(json.load(sys.stdin), "diff_ids")))'
}
# fresh_copy_layer: the COPY layer's diff_id of a --no-cache build of $CTX in a new store.
fresh_copy_layer() {
	local saved=$KILN_ROOT
	export KILN_ROOT="$T/fresh"
	rm -rf "$KILN_ROOT"
	run_kiln import "$T/busybox-rootfs" busybox
	run_kiln build --no-cache -t fresh "$CTX"
	[ "$rc" -eq 0 ] || fail "fresh --no-cache build: $err"
	diff_ids fresh | tail -n 1
	export KILN_ROOT=$saved
}
# copy_snapshot: the snapshot of the latest copy that kept a manifest.
copy_snapshot() { ls -t "$KILN_ROOT/cache/copies" | head -n 1; }
# upper SNAPSHOT: its diff directory.
upper() { echo "$S/diffs/$(sed -n 's/^diff //p' "$S/meta/$1")/fs"; }
# tree_sum DIR: content, names, types, modes, owners and times of a tree.
tree_sum() {
	(cd "$1" && find . -printf '%p %y %m %U:%G %T@ %l\n' | sort &&
		find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum
}

# ---- the first build copies in full and keeps a manifest ----
run_kiln build --progress plain -t v1 "$CTX"
expect_eq "first build: $err" "$rc" 0
expect_eq "the first build is a full copy" \
	"$(printf '%s\n' "$err" | grep -c 'incremental copy' || true)" 0
snap1=$(copy_snapshot)
expect_eq "one manifest, for the COPY's snapshot" "$(ls "$KILN_ROOT/cache/copies" | wc -l)" 1
sum1=$(tree_sum "$(upper "$snap1")")
layer1=$(diff_ids v1 | tail -n 1)
expect_eq "the layer is a clean build's" "$layer1" "$(fresh_copy_layer)"

# ---- one file changed: incremental ----
echo "appended" >>"$CTX/d2/f5.txt"
run_kiln build --progress plain -t v2 "$CTX"
expect_eq "rebuild after one change: $err" "$rc" 0
expect_contains "the COPY ran incrementally, writing one file" "$err" \
	"incremental copy: 1 of "
snap2=$(copy_snapshot)
expect_eq "the manifest moved to the new snapshot" "$(ls "$KILN_ROOT/cache/copies" | wc -l)" 1
[ "$snap2" != "$snap1" ] || fail "no new snapshot"
expect_eq "the old snapshot is byte for byte unchanged" "$(tree_sum "$(upper "$snap1")")" "$sum1"
u1=$(upper "$snap1")
u2=$(upper "$snap2")
expect_eq "an unchanged file shares its inode" "$(stat -c %i "$u2/src/d1/f1.txt")" \
	"$(stat -c %i "$u1/src/d1/f1.txt")"
[ "$(stat -c %i "$u2/src/d2/f5.txt")" != "$(stat -c %i "$u1/src/d2/f5.txt")" ] &&
	expect_eq "the changed file is a new inode" ok ok || fail "the changed file kept its inode"
expect_eq "the old snapshot has the old content" "$(cat "$u1/src/d2/f5.txt")" "file 2/5"
run_kiln run v2 cat /src/d2/f5.txt /src/d1/link /src/d3/hard
expect_eq "the new image has the new content" "$out" \
	"$(printf 'file 2/5\nappended\nfile 2/1\nfile 3/1')"
run_kiln run v1 cat /src/d2/f5.txt
expect_eq "the old image has the old content" "$out" "file 2/5"
expect_eq "the old image's layer is the same" "$(diff_ids v1 | tail -n 1)" "$layer1"
expect_eq "the incremental layer is a clean build's" "$(diff_ids v2 | tail -n 1)" \
	"$(fresh_copy_layer)"

# ---- a new file, a mode change, a new directory: still incremental ----
sleep 1.1
echo new >"$CTX/d5/new.txt"
chmod 0600 "$CTX/d1/f2.txt"
mkdir "$CTX/d6" && echo six >"$CTX/d6/x"
run_kiln build --progress plain -t v3 "$CTX"
expect_eq "rebuild with additions: $err" "$rc" 0
expect_contains "additions run incrementally" "$err" "incremental copy:"
run_kiln run v3 sh -c 'cat /src/d5/new.txt /src/d6/x; stat -c %a /src/d1/f2.txt'
expect_eq "the added files and the new mode" "$out" "$(printf 'new\nsix\n600')"
expect_eq "additions: the layer is a clean build's" "$(diff_ids v3 | tail -n 1)" \
	"$(fresh_copy_layer)"

# ---- fallbacks: the full copy, and the same layer as a clean build ----
fallback() { # WHAT REASON IMAGE
	run_kiln build --progress plain -t "$3" "$CTX"
	expect_eq "$1: $err" "$rc" 0
	expect_contains "$1: falls back to the full copy" "$err" "incremental copy not possible"
	expect_contains "$1: says why" "$err" "$2"
	expect_eq "$1: the layer is a clean build's" "$(diff_ids "$3" | tail -n 1)" \
		"$(fresh_copy_layer)"
}
sleep 1.1
rm "$CTX/d4/f3.txt"
fallback "a deleted source" "source entries are gone" v4
run_kiln run v4 test -e /src/d4/f3.txt
expect_eq "the deleted file is not in the image" "$rc" 1

sleep 1.1
rm "$CTX/d5/f2.txt" && mkdir "$CTX/d5/f2.txt" && echo in >"$CTX/d5/f2.txt/in"
fallback "a file turned directory" "changed type" v5
run_kiln run v5 cat /src/d5/f2.txt/in
expect_eq "the directory is in the image" "$out" "in"

sleep 1.1
echo more >>"$CTX/d3/f1.txt"
fallback "a changed file with hard links" "has hard links" v6
run_kiln run v6 sh -c 'cat /src/d3/hard; stat -c %h /src/d3/f1.txt'
expect_eq "both names have the new content, still linked" "$out" \
	"$(printf 'file 3/1\nmore\n2')"

# ---- --chmod and --chown: another step, copied in full ----
sed -i 's|^COPY . /src$|COPY --chmod=640 --chown=1000:1000 . /src|' "$CTX/Dockerfile"
sleep 1.1
run_kiln build --progress plain -t v7 "$CTX"
expect_eq "--chmod/--chown: $err" "$rc" 0
expect_eq "--chmod/--chown: a new step, a full copy" \
	"$(printf '%s\n' "$err" | grep -c 'incremental copy' || true)" 0
run_kiln run v7 stat -c '%a %u:%g' /src/d1/f1.txt
expect_eq "--chmod/--chown applied" "$out" "640 1000:1000"
sleep 1.1
echo again >>"$CTX/d1/f1.txt"
run_kiln build --progress plain -t v8 "$CTX"
expect_contains "--chmod/--chown: the next change is incremental" "$err" "incremental copy: 1 of "
run_kiln run v8 sh -c 'stat -c "%a %u:%g" /src/d1/f1.txt; tail -n 1 /src/d1/f1.txt'
expect_eq "--chmod/--chown: kept on the rewritten file" "$out" "$(printf '640 1000:1000\nagain')"
expect_eq "--chmod/--chown: the layer is a clean build's" "$(diff_ids v8 | tail -n 1)" \
	"$(fresh_copy_layer)"

# ---- owner names: looked up in the parent, even when the copy brings a passwd ----
C2="$T/ctx2"
mkdir -p "$C2/etc"
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:2000:2000:app:/home/app:/bin/sh\n' >"$C2/etc/passwd"
echo one >"$C2/a.txt"
printf 'FROM busybox\nCOPY --chown=app . /\n' >"$C2/Dockerfile"
sleep 1.1
run_kiln build -t p1 "$C2"
expect_eq "named owner, copied passwd: $err" "$rc" 0
sleep 1.1
echo two >>"$C2/a.txt"
run_kiln build --progress plain -t p2 "$C2"
expect_eq "named owner, copied passwd, rebuild: $err" "$rc" 0
expect_contains "a copied passwd: copied in full" "$err" "owner names and a copied passwd"
run_kiln run p2 stat -c %u /a.txt
expect_eq "the owner is the parent's app" "$out" 1000
printf 'FROM busybox\nCOPY --chown=app:app . /src\n' >"$C2/Dockerfile"
rm "$C2/etc/passwd"
sleep 1.1
run_kiln build -t p3 "$C2"
sleep 1.1
echo three >>"$C2/a.txt"
run_kiln build --progress plain -t p4 "$C2"
expect_contains "named owner, no passwd copied: incremental" "$err" "incremental copy: 1 of "
run_kiln run p4 sh -c 'stat -c %u:%g /src/a.txt; tail -n 1 /src/a.txt'
expect_eq "named owner applied to the rewritten file" "$out" "$(printf '1000:1000\nthree')"

# ---- --no-cache never clones ----
sleep 1.1
echo nc >>"$CTX/d1/f1.txt"
run_kiln build --progress plain --no-cache -t v9 "$CTX"
expect_eq "--no-cache: $err" "$rc" 0
expect_eq "--no-cache: a full copy" "$(printf '%s\n' "$err" | grep -c 'incremental copy' || true)" 0

# ---- readers of a cloned snapshot: COPY --from, -o type=local; COPY --link copies in full ----
cat >"$T/Dockerfile.readers" <<'DF'
FROM busybox AS s
COPY . /src
FROM busybox
COPY --from=s /src/d1 /from
COPY --link d2 /linked
DF
sleep 1.1
run_kiln build -f "$T/Dockerfile.readers" -t r1 "$CTX"
expect_eq "readers: $err" "$rc" 0
sleep 1.1
echo r2 >>"$CTX/d1/f4.txt"
echo r2 >>"$CTX/d2/f4.txt"
run_kiln build --progress plain -f "$T/Dockerfile.readers" -t r2 -o "type=local,dest=$T/out" "$CTX"
expect_eq "readers, one change each: $err" "$rc" 0
expect_eq "readers: only the plain COPY is incremental" \
	"$(printf '%s\n' "$err" | grep -c 'incremental copy: ' || true)" 1
snapr=$(copy_snapshot)
sumr=$(tree_sum "$(upper "$snapr")")
run_kiln build -f "$T/Dockerfile.readers" -t r2 "$CTX"
run_kiln run r2 sh -c 'tail -n 1 /from/f4.txt; tail -n 1 /linked/f4.txt; cat /from/f1.txt'
expect_eq "readers: COPY --from and --link see the change" "$out" \
	"$(printf 'r2\nr2\nfile 1/1\nagain\nnc')"
expect_eq "readers: -o type=local has the change" "$(tail -n 1 "$T/out/from/f4.txt")" r2
echo scribble >>"$T/out/from/f2.txt"
expect_eq "readers: writing the local export leaves the snapshot alone" \
	"$(tree_sum "$(upper "$snapr")")" "$sumr"

# ---- kill -9 during incremental copies: the next build is right ----
for d in 1 2 3 4 5 6; do
	for f in $(seq 1 300); do echo "$d $f" >"$CTX/d$d/many$f"; done
done
sleep 1.1
run_kiln build -t k0 "$CTX"
expect_eq "before the kills: $err" "$rc" 0
sleep 1.1
for delay in 0.05 0.1 0.15 0.2 0.3 0.4; do
	echo "k $delay" >>"$CTX/d6/many7"
	"$KILN" build "$CTX" >/dev/null 2>&1 &
	pid=$!
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
done
echo last >>"$CTX/d2/many9"
run_kiln build --progress plain -t survived "$CTX"
expect_eq "after the kills: $err" "$rc" 0
run_kiln run survived sh -c 'tail -n 1 /src/d6/many7; tail -n 1 /src/d2/many9'
expect_eq "after the kills: the latest content" "$out" "$(printf 'k 0.4\nlast')"
expect_eq "after the kills: the layer is a clean build's" "$(diff_ids survived | tail -n 1)" \
	"$(fresh_copy_layer)"
expect_eq "no snapshot left half-made" \
	"$(find "$S/active" "$S/tmp" -mindepth 1 -maxdepth 1 | wc -l)" 0

# ---- prune takes the manifests with the snapshots ----
run_kiln prune --all
expect_eq "prune --all: $err" "$rc" 0
# (A killed build may leave a snapshot no record names, which prune keeps for ten
# minutes in case a build is still recording it: its manifest stays with it.)
stale=""
for m in $(ls "$KILN_ROOT/cache/copies"); do [ -e "$S/meta/$m" ] || stale="$stale $m"; done
expect_eq "no manifest outlives its snapshot" "$stale" ""
expect_eq "no lineage outlives its record" "$(ls "$KILN_ROOT/cache/lineage" | wc -l)" 0

finish
