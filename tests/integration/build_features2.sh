#!/usr/bin/env bash
# kiln build: --build-context, base image ONBUILD triggers and WorkingDir, cache mounts
# seeded from a stage, --security=insecure, .dockerignore on bind mounts of the context.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"
source "$(dirname "$0")/registry_lib.sh"

make_busybox
CTX="$T/ctx"
mkdir -p "$CTX"
echo "main context" >"$CTX/main.txt"

# ---- --build-context NAME=docker-image://REF replaces an image of that name ----
# alpine is in no store and the test is offline: only the context can make this work.
run_kiln build -t bc-image --build-context alpine=docker-image://busybox - <<'DF'
FROM alpine
RUN busybox echo "on busybox" > /which
DF
expect_eq "FROM alpine with alpine=docker-image://busybox: $err" "$rc" 0
run_kiln run bc-image cat /which
expect_eq "the stage ran on busybox" "$out" "on busybox"
# The normalised name matches too, as in buildx.
run_kiln build -t bc-image2 --build-context alpine=docker-image://busybox - <<'DF'
FROM docker.io/library/alpine:latest
RUN echo ok > /ok
DF
expect_eq "FROM docker.io/library/alpine:latest matches alpine=: $err" "$rc" 0

# ---- NAME=DIR: COPY --from and RUN --mount=from read that directory ----
SRC="$T/srcdir"
mkdir -p "$SRC/sub"
echo "from the named context" >"$SRC/a.txt"
echo "nested" >"$SRC/sub/b.txt"
echo "ignored" >"$SRC/secret.key"
printf '*.key\n' >"$SRC/.dockerignore"
cat >"$CTX/Dockerfile.dir" <<'DF'
FROM busybox AS src
RUN echo "the stage, not the context" > /a.txt
FROM busybox
COPY --from=src . /x
RUN --mount=from=src,target=/m sh -c 'cat /m/a.txt; ls /m | grep -v dockerignore | tr "\n" " "' > /mounted
RUN ls /x | sort | tr '\n' ' ' > /listing
DF
run_kiln build -f "$CTX/Dockerfile.dir" -t bc-dir --build-context src="$SRC" "$CTX"
expect_eq "COPY --from=src with src=DIR: $err" "$rc" 0
run_kiln run bc-dir cat /x/a.txt /x/sub/b.txt /mounted /listing
expect_eq "the directory wins over the stage of that name; its .dockerignore applies" \
	"$out" "$(printf 'from the named context\nnested\nfrom the named context\na.txt sub a.txt sub ')"
run_kiln build -f "$CTX/Dockerfile.dir" -t bc-dir --build-context src="$SRC" "$CTX"
expect_eq "rebuild: $err" "$rc" 0
all_cached=$(count_cached "$err")
expect_eq "an unchanged directory runs only the export" "$(printf '%s\n' "$err" | grep -v 'exporting' | grep -c '^#[0-9]* DONE' || true)" 1
echo "changed" >"$SRC/secret.key"
run_kiln build -f "$CTX/Dockerfile.dir" -t bc-dir --build-context src="$SRC" "$CTX"
expect_eq "an ignored file changed: still cached" "$(count_cached "$err")" "$all_cached"
echo "edited" >"$SRC/sub/b.txt"
run_kiln build -f "$CTX/Dockerfile.dir" -t bc-dir --build-context src="$SRC" "$CTX"
expect_eq "rebuild after an edit: $err" "$rc" 0
run_kiln run bc-dir cat /x/sub/b.txt
expect_eq "a changed file in the named context misses the cache" "$out" "edited"

# ---- NAME=DIR as a stage's root filesystem ----
ROOTDIR="$T/rootdir"
mkdir -p "$ROOTDIR/etc"
echo "root file" >"$ROOTDIR/etc/motd"
run_kiln build -t bc-root --build-context rootfs="$ROOTDIR" -o "$T/rootout" - <<'DF'
FROM rootfs
DF
expect_eq "FROM a directory context: $err" "$rc" 0
expect_eq "the directory's files are the stage's" "$(cat "$T/rootout/etc/motd" 2>&1)" "root file"

# ---- NAME=oci-layout://DIR[:TAG] ----
run_kiln build -t layoutimg - <<'DF'
FROM busybox
RUN echo "from the layout" > /marker
DF
expect_eq "image for the layout: $err" "$rc" 0
run_kiln save layoutimg -o "$T/layout.tar"
expect_eq "save: $err" "$rc" 0
mkdir -p "$T/layout"
tar -xf "$T/layout.tar" -C "$T/layout"
run_kiln rmi layoutimg
cat >"$CTX/Dockerfile.layout" <<'DF'
FROM base
RUN cat /marker > /got
DF
run_kiln build -f "$CTX/Dockerfile.layout" -t bc-layout --build-context base="oci-layout://$T/layout:latest" "$CTX"
expect_eq "FROM base with base=oci-layout://DIR:latest: $err" "$rc" 0
run_kiln run bc-layout cat /got
expect_eq "the stage is the layout's image" "$out" "from the layout"
run_kiln build -f "$CTX/Dockerfile.layout" -t bc-layout2 --build-context base="oci-layout://$T/layout:nosuchtag" "$CTX"
expect_eq "an unknown tag fails" "$rc" 1
expect_contains "names the tag" "$err" "nosuchtag"
run_kiln build -f "$CTX/Dockerfile.layout" --build-context "base" "$CTX"
expect_eq "--build-context without = is a usage error" "$rc" 2

# ---- a base image's ONBUILD triggers run after FROM, expanded then, and are consumed ----
run_kiln build -t ob-base "$CTX" -f - <<'DF'
FROM busybox
WORKDIR /srv/app
ONBUILD ARG V=default
ONBUILD RUN echo "trigger in $(pwd) with $V" > /trigger
ONBUILD COPY main.txt /from-trigger.txt
DF
expect_eq "base with ONBUILD: $err" "$rc" 0
run_kiln run ob-base sh -c 'ls /trigger 2>&1 | wc -l; ls /from-trigger.txt 2>/dev/null | wc -l'
expect_eq "the triggers do not run in the base itself" "$(echo $out)" "1 0"
run_kiln build -t ob-child --build-arg V=given "$CTX" -f - <<'DF'
FROM ob-base
RUN cat /trigger /from-trigger.txt > /seen
WORKDIR sub
RUN pwd > /pwd
COPY main.txt rel/
DF
expect_eq "child of a base with ONBUILD: $err" "$rc" 0
run_kiln run ob-child cat /seen /pwd /srv/app/sub/rel/main.txt
expect_eq "triggers ran with the child's build arg; WORKDIR sub is below the base's WorkingDir" \
	"$out" "$(printf 'trigger in /srv/app with given\nmain context\n/srv/app/sub\nmain context')"
run_kiln inspect ob-child
expect_eq "inspect: $err" "$rc" 0
case "$out" in *OnBuild*) fail "the triggers are consumed, not in the child's config" ;; *) checks=$((checks + 1)) ;; esac
expect_contains "the child's WorkingDir" "$out" '"WorkingDir": "/srv/app/sub"'
run_kiln build -t ob-grandchild "$CTX" -f - <<'DF'
FROM ob-child
RUN test ! -e /trigger2 && echo ok > /gc
DF
expect_eq "a grandchild builds without the consumed triggers: $err" "$rc" 0
run_kiln build -t ob-bad "$CTX" -f - <<'DF'
FROM busybox
ONBUILD RUN exit 3
DF
expect_eq "base with a failing trigger: $err" "$rc" 0
printf 'FROM ob-bad\nRUN true\n' >"$CTX/Dockerfile.obfail"
run_kiln build -f "$CTX/Dockerfile.obfail" "$CTX"
expect_eq "a failing trigger fails the child" "$rc" 1
expect_contains "at the FROM line" "$err" "Dockerfile.obfail:1:"

# ---- a cache mount with from/source starts as that stage's (or image's) directory ----
cat >"$CTX/Dockerfile.seed" <<'DF'
FROM busybox AS seed
RUN mkdir -p /data && echo seeded > /data/s
FROM busybox
ARG N=1
RUN --mount=type=cache,target=/c,from=seed,source=/data \
    --mount=type=cache,target=/img,from=busybox,source=/etc \
    cat /c/s > /seen && ls /img/passwd >> /seen && echo "run $N" >> /c/log && cat /c/log > /log
RUN --mount=type=cache,target=/c sh -c 'ls /c | wc -l' > /plain
DF
run_kiln build -f "$CTX/Dockerfile.seed" -t seeded --build-arg N=1 "$CTX"
expect_eq "cache mount from a stage: $err" "$rc" 0
run_kiln build -f "$CTX/Dockerfile.seed" -t seeded --build-arg N=2 "$CTX"
expect_eq "cache mount from a stage, again: $err" "$rc" 0
run_kiln run seeded cat /seen /log /plain
expect_eq "seeded from the stage and the image, kept across builds, apart from the plain cache" \
	"$out" "$(printf 'seeded\n/img/passwd\nrun 1\nrun 2\n0')"

# ---- RUN --security=insecure: only with --allow, then privileged ----
cat >"$CTX/Dockerfile.insecure" <<'DF'
FROM busybox
RUN echo sandboxed
RUN --security=insecure grep CapEff /proc/self/status > /caps && mkdir -p /mnt2 && \
    mount -t tmpfs none /mnt2 && echo mounted > /mnt2/x && cat /mnt2/x >> /caps && umount /mnt2 && \
    ls /dev | wc -l > /devs && (mount | grep -c -e ' /proc/sys ' -e ' /proc/kcore ' || true) > /masks && \
    (mount | grep ' /sys ' | grep -c '[(,]ro[,)]' || true) > /sysro
RUN (mount | grep -c -e ' /proc/sys ' -e ' /proc/kcore ' || true) > /masks-normal
DF
run_kiln build -f "$CTX/Dockerfile.insecure" -t insecure "$CTX"
expect_eq "--security=insecure without --allow fails" "$rc" 1
expect_contains "naming the line and the entitlement" "$err" "Dockerfile.insecure:3:"
expect_contains "the entitlement" "$err" "--allow security.insecure"
run_kiln build -f "$CTX/Dockerfile.insecure" -t insecure --allow security.insecure "$CTX"
expect_eq "--security=insecure with --allow: $err" "$rc" 0
run_kiln run insecure cat /caps
expect_eq "every capability kiln has, and mount works" "$out" "$(grep CapEff /proc/self/status)
mounted"
run_kiln run insecure cat /devs
expect_eq "the host's devices" "$out" "$(ls /dev | wc -l)"
run_kiln run insecure cat /masks /sysro
expect_eq "/proc is not masked, /sys is read-write" "$(echo $out)" "0 0"
run_kiln run insecure cat /masks-normal
expect_eq "the next RUN is sandboxed again: masked /proc paths" "$(test "$out" -gt 0 && echo masked)" "masked"
run_kiln build -t notinsecure - <<'DF'
FROM busybox
RUN grep CapEff /proc/self/status > /caps; mount -t tmpfs none /mnt 2>/dev/null && echo mounted >> /caps || echo refused >> /caps
DF
run_kiln run notinsecure cat /caps
expect_eq "a normal RUN keeps Docker's default capabilities" "$out" "$(printf 'CapEff:\t00000000a80425fb\nrefused')"

# ---- bind mounts of the context show only what .dockerignore keeps ----
C5="$T/ctx5"
mkdir -p "$C5/sub"
echo visible >"$C5/main.txt"
echo topsecret >"$C5/x.secret"
echo shown >"$C5/sub/visible.txt"
echo hidden >"$C5/sub/hidden.txt"
printf '*.secret\nsub/hidden.txt\nDockerfile\n' >"$C5/.dockerignore"
cat >"$C5/Dockerfile" <<'DF'
FROM busybox
RUN --mount=type=bind,target=/ctx find /ctx | sort | tr '\n' ' ' > /all
RUN --mount=type=bind,source=sub,target=/s,rw ls /s > /sub && echo scribble > /s/new
RUN --mount=type=bind,source=main.txt,target=/m.txt cat /m.txt > /m
DF
run_kiln build -t ign "$C5"
expect_eq "binds of a context with .dockerignore: $err" "$rc" 0
run_kiln run ign cat /all /sub /m
expect_eq "ignored files are not in the mounts" "$out" "/ctx /ctx/.dockerignore /ctx/main.txt /ctx/sub /ctx/sub/visible.txt visible.txt
visible"
expect_eq "a rw bind writes nothing back to the context" "$(ls "$C5/sub")" "$(printf 'hidden.txt\nvisible.txt')"
echo changed >"$C5/x.secret"
echo changed >"$C5/sub/hidden.txt"
run_kiln build -t ign "$C5"
expect_eq "only ignored files changed: nothing runs" "$(printf '%s\n' "$err" | grep -c '^#[0-9]* DONE')" 1
echo changed >"$C5/sub/visible.txt"
run_kiln build -t ign "$C5"
expect_eq "a kept file changed: the steps run again" "$(printf '%s\n' "$err" | grep -c '^#[0-9]* DONE')" 4

# The filtered copy is made once per content of the kept files: later steps and builds
# over the same files mount that copy (the same inodes), a changed file makes a new one
# that replaces it.
cat >"$T/Dockerfile.reuse" <<'DF'
FROM busybox
RUN --mount=type=bind,source=sub,target=/s stat -c %i /s/visible.txt > /first
RUN --mount=type=bind,source=sub,target=/s stat -c %i /s/visible.txt > /second && cat /s/visible.txt /s/hidden.txt >> /second 2>&1; true
DF
bind_copies() { ls "$KILN_ROOT"/snapshots/*/meta | grep -c '^x-bind-' || true; }
run_kiln build -t reuse -f "$T/Dockerfile.reuse" "$C5"
expect_eq "binds of the same files: $err" "$rc" 0
run_kiln run reuse cat /first /second
first=$(printf '%s\n' "$out" | head -1)
expect_eq "the second step mounts the first one's copy" "$(printf '%s\n' "$out" | sed -n 2p)" "$first"
expect_contains "of the kept files" "$out" "changed"
expect_contains "only" "$out" "can't open '/s/hidden.txt'"
copies=$(bind_copies)
run_kiln build --no-cache -t reuse -f "$T/Dockerfile.reuse" "$C5"
expect_eq "a rebuild without the cache: $err" "$rc" 0
run_kiln run reuse cat /first /second
expect_eq "copies nothing: the same copy is mounted" "$(printf '%s\n' "$out" | sort -u | head -1)" "$first"
expect_eq "and no other copy is made" "$(bind_copies)" "$copies"
echo "edited again" >"$C5/sub/visible.txt"
run_kiln build -t reuse -f "$T/Dockerfile.reuse" "$C5"
expect_eq "a rebuild after a kept file changed: $err" "$rc" 0
run_kiln run reuse cat /first /second
expect_contains "the steps see the change" "$out" "edited again"
checks=$((checks + 1))
[ "$(printf '%s\n' "$out" | head -1)" != "$first" ] || fail "a changed file still mounts the old copy"
expect_eq "whose new copy replaced the old one" "$(bind_copies)" "$copies"

# ---- ONBUILD of a base that is only in a registry: its config is resolved for the plan ----
reg_start plain
run_kiln push ob-base "$REG_HOST/kiln/ob-base:1"
expect_eq "push the ONBUILD base: $err" "$rc" 0
printf 'FROM %s/kiln/ob-base:1\nRUN cat /trigger\n' "$REG_HOST" >"$T/Dockerfile.regplan"
plan_runs() { printf '%s' "$out" | python3 -c 'import json, sys
print(" | ".join(v["description"].split("] ", 1)[1] for v in json.load(sys.stdin)["vertices"] if v["op"] == "exec"))'; }
run_kiln --root "$T/fresh-plan" plan -f "$T/Dockerfile.regplan" "$CTX"
expect_eq "kiln plan pulls nothing: $err" "$(plan_runs)" "RUN cat /trigger"
expect_eq "and makes no store" "$(ls -A "$T/fresh-plan" 2>/dev/null)" ""
run_kiln --root "$T/fresh-plan" plan --pull -f "$T/Dockerfile.regplan" "$CTX"
expect_eq "kiln plan --pull asks the registry for the config: $err" "$(plan_runs)" \
	'RUN echo "trigger in $(pwd) with $V" > /trigger | RUN cat /trigger'
run_kiln --root "$T/fresh-plan" images
expect_eq "but pulls no image" "$(printf '%s\n' "$out" | grep -c ob-base || true)" 0
run_kiln --root "$T/fresh" build -t from-reg --build-arg V=remote "$CTX" -f - <<DF
FROM $REG_HOST/kiln/ob-base:1
RUN cat /trigger /from-trigger.txt > /seen
DF
expect_eq "build FROM a registry image with triggers into an empty store: $err" "$rc" 0
run_kiln --root "$T/fresh" run from-reg cat /seen
expect_eq "the registry image's triggers ran" "$out" "$(printf 'trigger in /srv/app with remote\nmain context')"
# The tag moves to a base with another trigger: --pull plans with the new one.
run_kiln build -t ob-base2 "$CTX" -f - <<'DF'
FROM busybox
ONBUILD RUN echo "second trigger" > /trigger2
DF
expect_eq "second ONBUILD base: $err" "$rc" 0
run_kiln push ob-base2 "$REG_HOST/kiln/ob-base:1"
expect_eq "push it under the same tag: $err" "$rc" 0
printf 'FROM %s/kiln/ob-base:1\nRUN ls /trigger /trigger2 2>/dev/null > /seen; true\n' "$REG_HOST" >"$T/Dockerfile.moved"
run_kiln --root "$T/fresh" build -t moved -f "$T/Dockerfile.moved" "$CTX"
run_kiln --root "$T/fresh" run moved cat /seen
expect_eq "without --pull: the stored base and its triggers" "$out" "/trigger"
run_kiln --root "$T/fresh" plan -f "$T/Dockerfile.moved" "$CTX"
expect_contains "kiln plan shows the stored base's triggers, as the build ran them" "$(plan_runs)" \
	'RUN echo "trigger in $(pwd) with $V" > /trigger'
run_kiln --root "$T/fresh" plan --pull -f "$T/Dockerfile.moved" "$CTX"
expect_contains "with --pull, the new base's" "$(plan_runs)" 'RUN echo "second trigger" > /trigger2'
run_kiln --root "$T/fresh" build -t moved --pull -f "$T/Dockerfile.moved" "$CTX"
expect_eq "--pull: $err" "$rc" 0
run_kiln --root "$T/fresh" run moved cat /seen
expect_eq "with --pull: the new base and its trigger" "$out" "/trigger2"

finish
