#!/usr/bin/env bash
# Portable cache through a directory: --cache-to type=local exports the steps' records and
# layers as an OCI layout; a brand-new store (or one after `kiln prune --all`) that imports
# it with --cache-from runs no unchanged step, fetches only the layers it uses, and builds
# the same image. mode=min vs max, cache mounts (cache-mounts=true, with the size cap),
# and secrets that must not travel.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"

# Same base image digest in every store: kiln import takes "created" from it.
export SOURCE_DATE_EPOCH=1700000000
make_busybox

# use_root NAME: a brand-new store with the same busybox image.
use_root() {
	export KILN_ROOT="$T/$1"
	run_kiln import "$T/busybox-rootfs" busybox
	[ "$rc" -eq 0 ] || fail "import into $1: $err"
}
# build_ok WHAT ARGS...: kiln build with plain progress, which must succeed.
build_ok() {
	local what=$1
	shift
	run_kiln build --progress plain "$@"
	expect_eq "$what: exit ($err)" "$rc" 0
}
digest_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["containerimage.digest"])' "$1"; }
fetched() { printf '%s\n' "$1" | sed -n 's/^kiln: cache layers fetched: //p'; }
# step_state TEXT PATTERN: CACHED or DONE for the step whose title matches PATTERN.
step_state() {
	local n
	n=$(printf '%s\n' "$1" | grep -F "$2" | head -1 | sed -n 's/^#\([0-9]*\) .*/\1/p')
	printf '%s\n' "$1" | grep -E "^#$n (CACHED|DONE)" | head -1 | awk '{print $2}'
}

# ---- export, fresh store, import: everything CACHED, same image ----
mkdir -p "$T/ctx"
echo hello >"$T/ctx/a.txt"
echo world >"$T/ctx/b.txt"
cat >"$T/ctx/Dockerfile" <<'DF'
FROM busybox
RUN echo one > /one
COPY a.txt /a.txt
RUN cat /a.txt > /a2
COPY b.txt /b.txt
RUN cat /b.txt > /b2
DF
use_root root1
build_ok "first build" --metadata-file "$T/md1" --cache-to "type=local,dest=$T/cache" -t app "$T/ctx"
expect_eq "layout index" "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["manifests"]), d["manifests"][0]["mediaType"])' "$T/cache/index.json")" \
	"1 application/vnd.oci.image.manifest.v1+json"
man=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"][7:])' "$T/cache/index.json")
expect_eq "manifest config is the cache metadata" \
	"$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["config"]["mediaType"], len(m["layers"]))' "$T/cache/blobs/sha256/$man")" \
	"application/vnd.kiln.cache.config.v1+json 5"

# The other machine has the context elsewhere, with other mtimes: keys must not care.
cp -r "$T/ctx" "$T/moved"
touch -d '2001-01-01' "$T/moved/a.txt"
use_root root2
build_ok "import build" --metadata-file "$T/md2" --cache-from "type=local,src=$T/cache" -t app "$T/moved"
expect_eq "every step is CACHED on a fresh store" "$(count_cached "$err")" 5
expect_eq "RUN steps did not run" "$(printf '%s\n' "$err" | grep -A1 '\] RUN' | grep -c DONE || true)" 0
expect_eq "all five layers fetched" "$(fetched "$err")" "5 of 5"
expect_eq "same manifest digest" "$(digest_of "$T/md2")" "$(digest_of "$T/md1")"
run_kiln run app cat /b2
expect_eq "the imported image works" "$out" "world"

# ---- compression=zstd: zstd layers travel and apply the same ----
use_root root1z
build_ok "zstd export" --cache-to "type=local,dest=$T/cz,compression=zstd" -t app "$T/ctx"
expect_eq "the cache's layers are zstd" \
	"$(python3 -c 'import json,sys; d=sys.argv[1]; i=json.load(open(d+"/index.json")); m=json.load(open(d+"/blobs/sha256/"+i["manifests"][0]["digest"][7:])); print(sorted(set(l["mediaType"] for l in m["layers"])))' "$T/cz")" \
	"['application/vnd.oci.image.layer.v1.tar+zstd']"
use_root root2z
build_ok "zstd import" --cache-from "type=local,src=$T/cz" -t app "$T/moved"
expect_eq "zstd: every step CACHED" "$(count_cached "$err")" 5
run_kiln run app cat /b2
expect_eq "zstd: image works" "$out" "world"

# ---- one file changed: only the steps after it run, only used layers are fetched ----
use_root root3
echo WORLD >"$T/ctx/b.txt"
build_ok "changed build" --explain --cache-from "type=local,src=$T/cache" -t app "$T/ctx"
expect_contains "--explain compares the miss with the imported step" "$err" \
	"COPY b.txt /b.txt: file /b.txt under [stage-0 5/6] COPY b.txt /b.txt changed"
expect_eq "steps before the change are CACHED" "$(count_cached "$err")" 3
expect_eq "COPY b.txt ran" "$(step_state "$err" "COPY b.txt")" DONE
expect_eq "RUN cat /b.txt ran" "$(step_state "$err" "RUN cat /b.txt")" DONE
expect_eq "RUN cat /a.txt is CACHED" "$(step_state "$err" "RUN cat /a.txt")" CACHED
expect_eq "only the three used layers were fetched" "$(fetched "$err")" "3 of 5"
run_kiln run app cat /a2 /b2
expect_eq "changed image content" "$out" "hello
WORLD"
echo world >"$T/ctx/b.txt"

# ---- a blob missing from the cache: that step and those above it run, the build works ----
cp -r "$T/cache" "$T/broken"
gone=$(python3 - "$T/broken" <<'PY'
import json, sys
d = sys.argv[1]
idx = json.load(open(d + "/index.json"))
man = json.load(open(d + "/blobs/sha256/" + idx["manifests"][0]["digest"][7:]))
meta = json.load(open(d + "/blobs/sha256/" + man["config"]["digest"][7:]))
for r in meta["records"]:
    if "RUN cat /a.txt" in r.get("description", ""):
        print(r["layer"]["digest"][7:])
PY
)
rm "$T/broken/blobs/sha256/$gone"
use_root root3b
build_ok "broken cache" --cache-from "type=local,src=$T/broken" -t app "$T/ctx"
expect_eq "only the steps below the missing blob are CACHED" "$(count_cached "$err")" 2
expect_eq "the step whose blob is gone runs" "$(step_state "$err" "RUN cat /a.txt")" DONE
run_kiln run app cat /b2
expect_eq "the image is whole" "$out" "world"

# ---- kiln prune --all, then import into the same store ----
run_kiln prune --all
expect_eq "prune --all: $err" "$rc" 0
build_ok "after prune" --cache-from "type=local,src=$T/cache" -t app "$T/ctx"
expect_eq "after prune --all every step is CACHED" "$(count_cached "$err")" 5

# ---- mode=min vs mode=max: an intermediate stage ----
mkdir -p "$T/ms"
cat >"$T/ms/Dockerfile" <<'DF'
FROM busybox AS build
RUN echo built > /artifact
FROM busybox
COPY --from=build /artifact /artifact
RUN cat /artifact > /copy
DF
use_root root4
build_ok "multistage min" --cache-to "type=local,dest=$T/cmin" "$T/ms"
build_ok "multistage max" --cache-to "type=local,dest=$T/cmax,mode=max" "$T/ms"
use_root root5
build_ok "import min" --cache-from "type=local,src=$T/cmin" -t ms "$T/ms"
expect_eq "min: the build stage's RUN runs" "$(step_state "$err" "RUN echo built")" DONE
expect_eq "min: the final stage's RUN is CACHED" "$(step_state "$err" "RUN cat /artifact")" CACHED
use_root root6
build_ok "import max" --cache-from "type=local,src=$T/cmax" -t ms "$T/ms"
expect_eq "max: the build stage's RUN is CACHED" "$(step_state "$err" "RUN echo built")" CACHED
expect_eq "max: the final stage's RUN is CACHED" "$(step_state "$err" "RUN cat /artifact")" CACHED
expect_eq "max: the build stage's layer is never fetched (nothing needs it)" "$(fetched "$err")" "2 of 3"
run_kiln run ms cat /copy
expect_eq "max: image content" "$out" "built"
# A store that only imported (its build stage's layer never fetched) exports it all again.
use_root root12
build_ok "import and re-export" --cache-from "type=local,src=$T/cmax" \
	--cache-to "type=local,dest=$T/cmax2,mode=max" "$T/ms"
use_root root13
build_ok "import the re-export" --cache-from "type=local,src=$T/cmax2" "$T/ms"
expect_eq "re-exported: all three steps CACHED" "$(count_cached "$err")" 3

# ---- cache mounts travel with mode=max,cache-mounts=true ----
mkdir -p "$T/cm"
cat >"$T/cm/Dockerfile" <<'DF'
FROM busybox
ARG V
RUN --mount=type=cache,target=/var/cache/app --mount=type=cache,id=owned,target=/o,uid=1000,gid=1000,mode=0750 sh -c 'echo "$V" >> /var/cache/app/log; cat /var/cache/app/log > /seen; echo "$V" > /o/last'
DF
use_root root7
build_ok "cache mount build" --build-arg V=first \
	--cache-to "type=local,dest=$T/ccm,mode=max,cache-mounts=true" \
	--cache-to "type=local,dest=$T/ccm-small,mode=max,cache-mounts=true,cache-mounts-max-size=1" "$T/cm"
expect_contains "over the cap: a warning" "$err" "larger than cache-mounts-max-size"
use_root root8
build_ok "cache mount import" --build-arg V=second --cache-from "type=local,src=$T/ccm" -t cm "$T/cm"
run_kiln run cm cat /seen
expect_eq "the cache mount's file reached the fresh store" "$out" "first
second"
expect_eq "an imported cache dir keeps its owner and mode" \
	"$(stat -c %u:%g:%a "$KILN_ROOT"/cache-mounts/owned*)" "1000:1000:750"
use_root root9
build_ok "capped import" --build-arg V=second --cache-from "type=local,src=$T/ccm-small" -t cm "$T/cm"
run_kiln run cm cat /seen
expect_eq "a mount over the cap is not exported" "$out" "second"

# ---- secrets never travel ----
mkdir -p "$T/sec"
printf 'TOPSECRET-%s' "$$" >"$T/secret.txt"
cat >"$T/sec/Dockerfile" <<'DF'
FROM busybox
RUN --mount=type=secret,id=tok sh -c 'wc -c /run/secrets/tok > /len'
RUN --mount=type=cache,target=/c --mount=type=secret,id=tok sh -c 'wc -c < /run/secrets/tok > /c/n; cp /c/n /n'
DF
use_root root10
build_ok "secret build" --secret "id=tok,src=$T/secret.txt" \
	--cache-to "type=local,dest=$T/csec,mode=max,cache-mounts=true" -t sec "$T/sec"
leaks=0
for b in "$T/csec/blobs/sha256/"*; do
	if { zcat -f "$b" 2>/dev/null || cat "$b"; } | grep -qa "TOPSECRET-$$"; then
		leaks=$((leaks + 1))
	fi
done
expect_eq "the secret's bytes are in no blob or metadata" "$leaks" 0
use_root root11
build_ok "secret import" --cache-from "type=local,src=$T/csec" -t sec "$T/sec"
expect_eq "secret steps are CACHED (no secret needed)" "$(count_cached "$err")" 2

finish
