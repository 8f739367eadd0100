#!/usr/bin/env bash
# kiln build: secrets, cache/bind/tmpfs mounts, COPY --from, ENV/WORKDIR/USER, scratch, stdin.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"
# count_steps TEXT: the number of steps that ran or came from the cache.
count_ran() { printf '%s\n' "$1" | grep -c '^#[0-9]* DONE' || true; }

make_busybox
CTX="$T/ctx"
mkdir -p "$CTX"
echo "hello from the context" >"$CTX/greeting.txt"
printf "s3cr3t-value" >"$T/secret.txt"

# ---- a secret is readable in RUN and absent from the image ----
cat >"$CTX/Dockerfile.secret" <<'DF'
FROM busybox
RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /seen-size
RUN --mount=type=secret,id=tok,env=TOKEN sh -c 'test "${#TOKEN}" -eq 12 && echo env-ok > /env-ok'
DF
run_kiln build -f "$CTX/Dockerfile.secret" -t sec --secret id=tok,src="$T/secret.txt" "$CTX"
expect_eq "secret build: $err" "$rc" 0
run_kiln run sec cat /seen-size /env-ok
expect_eq "the secret was readable in RUN" "$(echo $out)" "12 env-ok"
run_kiln run sec sh -c 'ls /run/secrets 2>/dev/null | wc -l'
expect_eq "no secret file in the image" "$out" "0"
run_kiln save sec -o "$T/sec.tar"
expect_eq "save: $err" "$rc" 0
mkdir -p "$T/sec"
tar -xf "$T/sec.tar" -C "$T/sec"
found=0
for blob in "$T"/sec/blobs/sha256/*; do
	if (zcat -f "$blob" 2>/dev/null || cat "$blob") | grep -qa 's3cr3t-value'; then found=1; fi
done
expect_eq "the secret's bytes are in no blob" "$found" 0
run_kiln build -f "$CTX/Dockerfile.secret" -t sec2 --no-cache "$CTX"
expect_eq "a required secret that was not given fails" "$rc" 1
expect_contains "names the secret" "$err" "tok"

# ---- a cache mount persists across builds ----
cat >"$CTX/Dockerfile.cache" <<'DF'
FROM busybox
ARG N=1
RUN --mount=type=cache,target=/c echo "run $N" >> /c/log && cat /c/log > /seen
DF
run_kiln build -f "$CTX/Dockerfile.cache" -t cm --build-arg N=1 "$CTX"
expect_eq "cache mount build 1: $err" "$rc" 0
run_kiln build -f "$CTX/Dockerfile.cache" -t cm --build-arg N=2 "$CTX"
expect_eq "cache mount build 2: $err" "$rc" 0
run_kiln run cm cat /seen
expect_eq "the second build saw the first's cache" "$out" "$(printf 'run 1\nrun 2')"
run_kiln run cm sh -c 'ls /c 2>/dev/null | wc -l'
expect_eq "the cache is not in the image" "$out" "0"

# ---- COPY --from, ENV/WORKDIR/USER in a later RUN, bind and tmpfs mounts ----
cat >"$CTX/Dockerfile.stages" <<'DF'
FROM busybox AS one
RUN mkdir -p /made && echo "from stage one" > /made/file
FROM busybox
COPY --from=one /made/file /got/file
COPY greeting.txt /got/
ENV COLOR=blue
WORKDIR /work/dir
USER app
RUN echo "$COLOR $(pwd) $(id -un)" > /tmp/facts
RUN --mount=type=bind,source=greeting.txt,target=/ctx/g cat /ctx/g > /tmp/bound
RUN --mount=type=tmpfs,target=/scratchpad sh -c 'echo x > /scratchpad/f && mount | grep -c " /scratchpad " > /tmp/tmpfs'
DF
run_kiln build -f "$CTX/Dockerfile.stages" -t st "$CTX"
expect_eq "stages build: $err" "$rc" 0
run_kiln run st cat /got/file /got/greeting.txt /tmp/facts /tmp/bound /tmp/tmpfs
expect_eq "COPY --from, context COPY, ENV/WORKDIR/USER, bind, tmpfs" "$out" "$(printf 'from stage one\nhello from the context\nblue /work/dir app\nhello from the context\n1')"
run_kiln inspect st
expect_contains "USER in the config" "$out" '"User": "app"'

# ---- a base image's USER applies to RUN when the Dockerfile sets none ----
run_kiln build -t app-base - <<'DF'
FROM busybox
USER app
DF
expect_eq "base with USER: $err" "$rc" 0
run_kiln build -t app-child - <<'DF'
FROM app-base
RUN id -un > /tmp/who
USER root
RUN id -un > /tmp/who2
DF
expect_eq "child build: $err" "$rc" 0
run_kiln run -u root app-child cat /tmp/who /tmp/who2
expect_eq "RUN as the base's user, then as the Dockerfile's" "$out" "$(printf 'app\nroot')"

# ---- and its WorkingDir (FROM golang runs in /go) ----
run_kiln build -t wd-base - <<'DF'
FROM busybox
WORKDIR /app/src
DF
run_kiln build -t wd-child - <<'DF'
FROM wd-base
RUN pwd > /tmp/pwd
WORKDIR /elsewhere
RUN pwd >> /tmp/pwd
DF
expect_eq "wd child: $err" "$rc" 0
run_kiln run wd-child cat /tmp/pwd
expect_eq "RUN in the base's WorkingDir, then the Dockerfile's" "$out" "$(printf '/app/src\n/elsewhere')"
run_kiln build -t wd-root - <<'DF'
FROM wd-base
WORKDIR /
RUN pwd > /tmp/pwd
DF
expect_eq "wd root: $err" "$rc" 0
run_kiln run wd-root cat /tmp/pwd
expect_eq "an explicit WORKDIR / wins over the base's WorkingDir" "$out" "/"

# ---- FROM scratch and a Dockerfile on stdin ----
mkdir -p "$T/empty"
set +e
printf 'FROM scratch\nCOPY --from=busybox /bin/busybox /bin/busybox\n' |
	"$KILN" build -t fromstdin - >"$T/stdout" 2>"$T/stderr"
rc=$?
set -e
expect_eq "scratch from stdin: $(cat "$T/stderr")" "$rc" 0
run_kiln run fromstdin /bin/busybox echo works
expect_eq "a scratch image with one file" "$out" "works"
mkdir -p "$T/scratch-out"
run_kiln build -o "type=local,dest=$T/scratch-out" - <<'DF'
FROM scratch
COPY --from=busybox /bin/busybox /bin/busybox
DF
expect_eq "scratch -o local: $err" "$rc" 0
expect_eq "only what was copied" "$(cd "$T/scratch-out" && find . | sort | tr '\n' ' ')" ". ./bin ./bin/busybox "
# ---- .dockerignore applies to copies from the context, whatever the source dir ----
IC="$T/ignore"
mkdir -p "$IC/sub/drafts"
echo a >"$IC/keep.txt"
echo s >"$IC/secret.txt"
echo d >"$IC/sub/drafts/d.txt"
echo k >"$IC/sub/k.txt"
echo x >"$IC/sub/x.log"
printf 'secret.txt\nsub/drafts\n**/*.log\nDockerfile\n' >"$IC/.dockerignore"
printf 'FROM busybox\nCOPY . /all/\nCOPY sub /sub/\nCOPY *.txt /txt/\nRUN find /all /sub /txt | sort > /list\n' >"$IC/Dockerfile"
run_kiln build -t ign "$IC"
expect_eq "ignore build: $err" "$rc" 0
run_kiln run ign cat /list
expect_eq "ignored files are not copied" "$(echo $out)" "/all /all/.dockerignore /all/keep.txt /all/sub /all/sub/k.txt /sub /sub/k.txt /txt /txt/keep.txt"
echo "changed" >"$IC/secret.txt"
run_kiln build -t ign "$IC"
expect_eq "an ignored file's change misses nothing" "$(printf '%s\n' "$err" | grep -c '^#[0-9]* DONE' || true)" 1

# ---- a base image neither in the store nor reachable ----
run_kiln build - <<'DF'
FROM 127.0.0.1:1/nosuch:1
RUN true
DF
expect_eq "a missing base image fails the build" "$rc" 1
expect_contains "says how to get it" "$err" "image 127.0.0.1:1/nosuch:1 not in the store (kiln pull/load/import it)"
expect_contains "with the FROM line" "$err" "Dockerfile:1:"

# ---- --pull fetches a stored base image again ----
run_kiln tag busybox 127.0.0.1:1/bb:1
mkdir -p "$T/pull"
printf 'FROM 127.0.0.1:1/bb:1\nRUN echo pulled-or-not\n' >"$T/pull/Dockerfile"
run_kiln build "$T/pull"
expect_eq "a stored image is used without asking the registry: $err" "$rc" 0
run_kiln build --pull "$T/pull"
expect_eq "--pull asks the registry, which is not there" "$rc" 1
expect_contains "and says so" "$err" "--pull: image 127.0.0.1:1/bb:1"

finish
