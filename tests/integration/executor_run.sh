#!/usr/bin/env bash
# kiln run --rootfs: the container's isolation, mounts and cleanup, on a busybox rootfs.
source "$(dirname "$0")/../lib.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (CI runs as root)"
[ -x /bin/busybox ] || { echo "FAIL: busybox-static is not installed" >&2; exit 1; }

R="$T/rootfs"
export TMPDIR="$T/tmp" # kiln's run directories, checked for leftovers at the end
mkdir -p "$TMPDIR"
mkdir -p "$R/bin" "$R/etc" "$R/tmp"
cp /bin/busybox "$R/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ "$applet" = busybox ] || ln -s busybox "$R/bin/$applet"
done
cat >"$R/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$R/etc/group" <<'EOF'
root:x:0:
app:x:1000:
extra:x:2000:app
nogroup:x:65534:
EOF

tree() { (cd "$1" && find . -printf '%p %y %l\n' | sort); }
# procs PREFIX: the host processes whose command line starts with PREFIX (no procps needed).
procs() {
	local f c
	for f in /proc/[0-9]*/cmdline; do
		c=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
		case "$c" in "$1"*) echo "${f%/cmdline}: $c" ;; esac
	done
}
# Mounts kiln could leave behind are under this test's directory (rootfs, run dirs, store);
# other tests running in parallel may mount elsewhere, so only those are compared.
my_mounts() { grep -F "$T" /proc/self/mountinfo || true; }
mounts_before=$(my_mounts)
rootfs_before=$(tree "$R")

# ---- isolation ----
run_kiln run --rootfs "$R" sh -c 'ps -o pid,comm; true'
expect_eq "only the container's processes" "$(echo $out)" "PID COMMAND 1 sh 2 ps"

run_kiln run --rootfs "$R" ls /proc/self/fd
expect_eq "fds 0-2 and ls's dir fd" "$(echo $out)" "0 1 2 3"

run_kiln run --rootfs "$R" sh -c 'stat -c "%n %F %t:%T %a" /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty'
expect_eq "minimal /dev" "$out" "$(printf '%s\n' '/dev/null character special file 1:3 666' '/dev/zero character special file 1:5 666' '/dev/full character special file 1:7 666' '/dev/random character special file 1:8 666' '/dev/urandom character special file 1:9 666' '/dev/tty character special file 5:0 666')"
# A host /dev without most nodes (a minimal CI container): kiln makes its own.
set +e
out=$(unshare -m sh -c 'mount --make-rprivate / && mount -t tmpfs tmpfs /dev && mknod -m 666 /dev/null c 1 3 &&
	"$0" run --rootfs "$1" stat -c "%n %t:%T %a" /dev/zero /dev/tty' "$KILN" "$R" 2>&1)
set -e
expect_eq "device nodes made where the host has none" "$out" "$(printf '/dev/zero 1:5 666\n/dev/tty 5:0 666')"
# The container's device nodes are its own: its root changing one leaves the host's alone.
# Outputs named /dev/null are written to the device, never replaced by a renamed temp file.
# Both in a private /dev, so a regression cannot break the machine's /dev/null.
mkdir -p "$T/devnull-ctx" && printf 'FROM devnull-img\nRUN echo hi >/hi\n' >"$T/devnull-ctx/Dockerfile"
set +e
out=$(unshare -m sh -c 'mount --make-rprivate / && mount -t tmpfs tmpfs /dev && mknod -m 666 /dev/null c 1 3 &&
	"$0" run --rootfs "$1" chmod 600 /dev/null && "$0" --root "$2" import "$1" devnull-img >/dev/null &&
	"$0" --root "$2" save devnull-img -o /dev/null && "$0" --root "$2" save devnull-img --format docker -o /dev/null &&
	"$0" --root "$2" build --progress quiet --iidfile /dev/null --metadata-file /dev/null \
		-o type=tar,dest=/dev/null -o type=oci,dest=/dev/null "$3" >/dev/null &&
	ln -s /proc/self/fd/1 /dev/stdout &&
	"$0" --root "$2" build --progress quiet --iidfile /dev/stdout "$3" >"$4" &&
	stat -c "%F %a" /dev/null /dev/stdout' "$KILN" "$R" "$T/devnull-root" "$T/devnull-ctx" "$T/iid.out" 2>&1)
set -e
expect_eq "host /dev/null and /dev/stdout after a container chmod and outputs to them" "$out" \
	"$(printf 'character special file 666\nsymbolic link 777')"
expect_contains "--iidfile /dev/stdout wrote through the link" "$(cat "$T/iid.out")" "sha256:"
run_kiln run --rootfs "$R" sh -c 'ls /dev/pts /dev/shm >/dev/null && for l in /dev/fd /dev/ptmx /dev/stdin; do readlink $l; done'
expect_eq "pts, shm and fd links" "$out" "$(printf '/proc/self/fd\npts/ptmx\n/proc/self/fd/0')"

run_kiln run --rootfs "$R" sh -c 'grep " /sys " /proc/self/mountinfo; touch /sys/kiln-x 2>&1; echo'
expect_contains "sysfs mounted read-only" "$out" " /sys ro,"
expect_contains "sysfs refuses writes" "$out" "Read-only file system"

run_kiln run --rootfs "$R" grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status
expect_eq "root capabilities are Docker's default set" "$out" "$(printf 'CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1')"

run_kiln run --rootfs "$R" -u app grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status
expect_eq "a USER has no effective capabilities" "$out" "$(printf 'CapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\nNoNewPrivs:\t1')"

run_kiln run --rootfs "$R" --hostname box sh -c 'hostname; cat /etc/hostname; grep -c box /etc/hosts'
expect_eq "hostname set in the container" "$out" "$(printf 'box\nbox\n1')"
for ns in uts ipc pid mnt; do
	run_kiln run --rootfs "$R" readlink /proc/self/ns/$ns
	expect_contains "$ns namespace" "$out" "$ns:["
	[ "$out" != "$(readlink /proc/self/ns/$ns)" ] || fail "$ns namespace is the host's"
done
run_kiln run --rootfs "$R" --hostname box hostname changed
expect_contains "hostname cannot be changed without CAP_SYS_ADMIN" "$err" "hostname"
expect_eq "host hostname unchanged" "$(hostname)" "$(cat /proc/sys/kernel/hostname)"

run_kiln run --rootfs "$R" --network none sh -c 'ls /sys/class/net; ip link show lo | head -1'
expect_eq "network none: only lo" "$(echo "$out" | head -1)" "lo"
expect_contains "network none: lo is up" "$out" ",UP"

# ---- users ----
run_kiln run --rootfs "$R" -u app sh -c 'id; echo $HOME'
expect_eq "USER name" "$out" "$(printf 'uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\n/home/app')"
run_kiln run --rootfs "$R" -u 65534 id
expect_eq "USER uid" "$out" "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"
run_kiln run --rootfs "$R" -u 1234:2000 id
expect_eq "USER uid:gid" "$out" "uid=1234 gid=2000(extra) groups=2000(extra)"
run_kiln run --rootfs "$R" -u ghost true
expect_eq "unknown USER fails" "$rc" "125"
expect_contains "unknown USER message" "$err" 'no user "ghost" in /etc/passwd'
for bad in 4294967296 4294967295 -1 1:4294967296 99999999999999999999; do
	run_kiln run --rootfs "$R" -u "$bad" true
	expect_eq "USER $bad is rejected" "$rc" "125"
done

# The runtime binary must not be writable from inside (CVE-2019-5736): every /proc/N/exe
# the container can see is opened for writing and must fail.
run_kiln run --rootfs "$R" sh -c 'for e in /proc/[0-9]*/exe; do if (echo x >>"$e") 2>/dev/null; then echo "WROTE $e"; fi; done; echo done'
expect_eq "no /proc/*/exe is writable" "$out" "done"

# ---- command, env, workdir, output ----
run_kiln run --rootfs "$R" /bin/foo
expect_eq "missing command exit code" "$rc" "127"
expect_eq "missing command message" "$err" "kiln: exec /bin/foo: No such file or directory"
run_kiln run --rootfs "$R" -e A=1 -e B=two -w /work/sub sh -c 'echo $A $B; pwd; echo to-stderr >&2; exit 3'
expect_eq "exit status" "$rc" "3"
expect_eq "env and workdir" "$out" "$(printf '1 two\n/work/sub')"
expect_eq "stderr stream" "$err" "to-stderr"
rm -rf "$R/work"

"$KILN" run --rootfs "$R" sh -c 'echo first; sleep 3; echo second' >"$T/stream" &
stream_pid=$!
sleep 1.5
expect_eq "output streamed as it comes" "$(cat "$T/stream")" "first"
wait "$stream_pid"
expect_eq "output complete" "$(cat "$T/stream")" "$(printf 'first\nsecond')"

# ---- timeout and interrupt kill the whole PID namespace ----
start=$(date +%s)
run_kiln run --rootfs "$R" --timeout 2 sh -c 'sleep 1357 & (sleep 1357 &); sleep 1357'
expect_eq "timeout exit code" "$rc" "124"
expect_contains "timeout message" "$err" "timed out"
expect_eq "timeout was prompt" "$(( $(date +%s) - start < 10 ))" "1"
expect_eq "no sleep survives the timeout" "$(procs 'sleep 1357')" ""

"$KILN" run --rootfs "$R" sh -c 'sleep 2468 & sleep 2468' >/dev/null 2>&1 &
kiln_pid=$!
sleep 1
kill -INT "$kiln_pid"
set +e
wait "$kiln_pid"
rc=$?
set -e
expect_eq "Ctrl-C exit code" "$rc" "130"
expect_eq "no sleep survives Ctrl-C" "$(procs 'sleep 2468')" ""

# ---- mounts ----
printf 's3cr3t-value' >"$T/secret"
run_kiln run --rootfs "$R" --secret id=tok,src="$T/secret" --mount type=secret,id=tok \
	--secret id=e,src="$T/secret" --mount type=secret,id=e,env=TOKEN \
	sh -c 'cat /run/secrets/tok; echo; stat -c %a /run/secrets/tok; echo $TOKEN; grep -c s3cr3t /proc/self/mountinfo || true'
expect_eq "secret readable, mode 0400, env" "$out" "$(printf 's3cr3t-value\n400\ns3cr3t-value\n0')"
expect_eq "secret mount point removed from the rootfs" "$(ls -A "$R")" "$(printf 'bin\netc\ntmp')"
expect_eq "secret never written to the rootfs" "$(grep -rl s3cr3t "$R" || true)" ""
MYTOKEN=from-env run_kiln run --rootfs "$R" --secret id=tk,env=MYTOKEN --mount type=secret,target=/run/secrets/tk cat /run/secrets/tk
expect_eq "secret from an environment variable, id from the target" "$out" "from-env"
run_kiln run --rootfs "$R" --mount type=secret,id=absent sh -c 'ls /run/secrets 2>&1; echo ran'
expect_contains "an optional secret not given is not mounted" "$out" "ran"
run_kiln run --rootfs "$R" --mount type=secret,id=absent,required=true true
expect_eq "a required secret not given fails" "$rc" "2"
expect_contains "required secret message" "$err" "secret absent not given with --secret"

run_kiln run --rootfs "$R" --mount type=cache,target=/cache sh -c 'echo one >>/cache/log'
run_kiln run --rootfs "$R" --mount type=cache,target=/cache sh -c 'echo two >>/cache/log; cat /cache/log'
expect_eq "cache persists between runs" "$out" "$(printf 'one\ntwo')"
run_kiln run --rootfs "$R" --mount type=cache,target=/other sh -c 'ls -A /other'
expect_eq "another id is another cache" "$out" ""

mkdir -p "$T/etc"
run_kiln run --rootfs "$R" --mount type=cache,id=../../etc,target=/c,uid=1000,mode=0750 sh -c 'echo esc >/c/marker; stat -c "%u %a" /c'
expect_eq "cache created with uid and mode" "$out" "1000 750"
expect_eq "cache id ../../etc stays in the cache area" \
	"$(cd "$KILN_ROOT" && find . -name marker | sed 's|/[^/]*-[0-9a-f]*/|/ID/|')" "./cache-mounts/ID/marker"
expect_eq "nothing written next to the store" "$(ls -A "$T/etc")" ""

# locked: a second run waits; private: a second run gets a fresh directory
"$KILN" run --rootfs "$R" --mount type=cache,id=lk,target=/c,sharing=locked sh -c 'echo a >/c/f; sleep 3; echo b >>/c/f' &
lk_pid=$!
for _ in $(seq 100); do # until the holder runs
	! ls "$KILN_ROOT"/cache-mounts/lk-*/f >/dev/null 2>&1 || break
	sleep 0.1
done
run_kiln run --rootfs "$R" --mount type=cache,id=lk,target=/c,sharing=private sh -c 'ls -A /c'
expect_eq "private cache is fresh while another run holds it" "$out" ""
run_kiln run --rootfs "$R" --mount type=cache,id=lk,target=/c,sharing=locked cat /c/f
expect_eq "locked cache waits for the holder" "$out" "$(printf 'a\nb')"
wait "$lk_pid"

run_kiln run --rootfs "$R" --mount type=tmpfs,target=/t,size=1m sh -c 'grep " /t " /proc/self/mountinfo'
expect_contains "tmpfs with size" "$out" "size=1024k"

mkdir -p "$T/src"
echo data >"$T/src/f"
run_kiln run --rootfs "$R" --mount type=bind,source="$T/src",target=/b sh -c 'cat /b/f; touch /b/new 2>&1'
expect_contains "bind is read-only by default" "$out" "Read-only file system"
run_kiln run --rootfs "$R" --mount type=bind,source="$T/src",target=/b,rw sh -c 'echo more >>/b/f; touch /b/new; cat /b/f; ls /b'
expect_eq "rw bind writes inside" "$out" "$(printf 'data\nmore\nf\nnew')"
expect_eq "rw bind writes are thrown away" "$(ls "$T/src"; cat "$T/src/f")" "$(printf 'f\ndata')"

sock="$T/agent.sock"
perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Local => $ARGV[0], Listen => 1) or die "$!"' "$sock"
run_kiln run --rootfs "$R" --mount type=ssh,src="$sock" sh -c 'echo $SSH_AUTH_SOCK; test -S "$SSH_AUTH_SOCK" && echo socket'
expect_eq "ssh agent socket forwarded" "$out" "$(printf '/run/buildkit/ssh_agent.0\nsocket')"

# A setup failure after mount points were made still removes them.
run_kiln run --rootfs "$R" --mount type=bind,source="$T/src",target=/etc/passwd true
expect_eq "failed mount exit code" "$rc" "125"
expect_contains "failed mount message" "$err" "mount point /etc/passwd: Not a directory"
run_kiln run --rootfs "$R" --mount type=bind,source="$T/src",target=/x true
ln -s etc "$R/proc"
run_kiln run --rootfs "$R" true
expect_contains "a symlink at /proc is refused" "$err" "/proc in the rootfs is not a directory"
rm "$R/proc"
run_kiln run --rootfs "$R" --mount type=tmpfs,target=/x,sharing=locked true
expect_eq "bad mount option exit code" "$rc" "2"
expect_contains "bad mount option message" "$err" "invalid cache sharing set for tmpfs mount"

expect_eq "rootfs unchanged by all the runs" "$(tree "$R")" "$rootfs_before"

# ---- symlinks planted at mount points stay inside the rootfs ----
mkdir -p "$T/outside" "$T/outside2" "$T/outside3"
touch "$T/outside3/canary"
ln -s "../../../../../../../../..$T/outside/hosts" "$R/etc/hosts"
ln -s "$T/outside2" "$R/run"
planted=$(tree "$R")
run_kiln run --rootfs "$R" --secret id=s,src="$T/secret" --mount type=secret,id=s sh -c 'cat /run/secrets/s >/dev/null && grep -c localhost /etc/hosts'
expect_eq "run with planted symlinks" "$out" "2"
expect_eq "nothing created outside via /etc/hosts" "$(ls -A "$T/outside")" ""
expect_eq "nothing created outside via /run" "$(ls -A "$T/outside2")" ""
expect_eq "mount points created inside were removed" "$(tree "$R")" "$planted"
rm "$R/etc/hosts" "$R/run"

# A relative dangling symlink behind a symlinked directory resolves from where it really is.
mkdir -p "$R/var/run"
ln -s var/run "$R/run"
ln -s ../sec2 "$R/var/run/secrets"
planted=$(tree "$R")
run_kiln run --rootfs "$R" --secret id=s,src="$T/secret" --mount type=secret,id=s sh -c 'cat /var/sec2/s'
expect_eq "secret behind two symlinks" "$out" "s3cr3t-value"
expect_eq "its mount points were removed" "$(tree "$R")" "$planted"
rm -rf "$R/var" "$R/run"

# The process swaps a directory kiln created for a symlink to the host: cleanup must not
# follow it.
run_kiln run --rootfs "$R" --secret id=s,src="$T/secret" --mount type=secret,id=s sh -c "mv /run /run.moved && ln -s $T/outside3 /run && echo swapped"
expect_eq "process swapped /run" "$out" "swapped"
expect_eq "cleanup did not follow the planted symlink" "$(ls -A "$T/outside3")" "canary"
rm -rf "$R/run" "$R/run.moved"

# ---- kiln run IMAGE: a throwaway snapshot of an image in the store ----
run_kiln import "$R" runtest
expect_eq "import the rootfs as an image" "$rc" "0"
run_kiln run runtest sh -c 'echo in-image >/written; cat /written; id -u'
expect_eq "run an image" "$out" "$(printf 'in-image\n0')"
run_kiln run runtest sh -c 'test -e /written && echo kept || echo gone'
expect_eq "each run starts from the image, writes are thrown away" "$out" "gone"
run_kiln --snapshotter native run runtest sh -c 'echo native >/w; cat /w'
expect_eq "the native (copying) snapshotter runs an image too" "$out" "native"
expect_eq "native snapshots live in their own store" "$(ls "$KILN_ROOT/snapshots" | sort | tr '\n' ' ')" "native overlayfs "
run_kiln --snapshotter bogus run runtest true
expect_eq "an unknown snapshotter is refused" "$rc" "125"
expect_contains "unknown snapshotter message" "$err" "bogus"
run_kiln run runtest
expect_eq "no command and none in the image" "$rc" "125"
expect_contains "no command message" "$err" "no Cmd or Entrypoint"
run_kiln run no-such-image true
expect_eq "unknown image" "$rc" "125"

# An OCI layout whose config has Env, WorkingDir, User, Entrypoint and Cmd: the defaults.
L="$T/layout"
mkdir -p "$L/blobs/sha256"
blob() { # blob FILE: store it in the layout, print its digest
	local d
	d=$(sha256sum "$1" | cut -d' ' -f1)
	cp "$1" "$L/blobs/sha256/$d"
	echo "sha256:$d"
}
tar -C "$R" -cf "$T/layer.tar" .
layer=$(blob "$T/layer.tar")
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin","FOO=img","BAR=img"],"WorkingDir":"/wd","User":"app","Entrypoint":["/bin/echo","ep"],"Cmd":["default"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
	"$arch" "$layer" >"$T/config.json"
config=$(blob "$T/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
	"$config" "$(stat -c %s "$T/config.json")" "$layer" "$(stat -c %s "$T/layer.tar")" >"$T/manifest.json"
manifest=$(blob "$T/manifest.json")
printf '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/library/cfgtest:1","org.opencontainers.image.ref.name":"1"}}]}' \
	"$manifest" "$(stat -c %s "$T/manifest.json")" >"$L/index.json"
run_kiln load "$L"
expect_eq "load the OCI layout" "$rc" "0"
run_kiln run cfgtest:1
expect_eq "Entrypoint + Cmd" "$out" "ep default"
run_kiln run cfgtest:1 given args
expect_eq "a command replaces Cmd, Entrypoint stays" "$out" "ep given args"
printf '#!/bin/sh\necho "$FOO $BAR $(pwd) $(id -un)"\n' >"$T/show"
chmod 755 "$T/show"
run_kiln run -e BAR=cli --mount type=bind,source="$T/show",target=/show --entrypoint /show cfgtest:1
expect_eq "image Env, WorkingDir and User; -e wins" "$out" "img cli /wd app"
run_kiln run --mount type=bind,source="$T/show",target=/show --entrypoint /show -w / -u root cfgtest:1
expect_eq "-w and -u override the image" "$out" "img img / root"
run_kiln run cfgtest:1 '$FOO'
expect_eq "Entrypoint gets its args without a shell" "$out" 'ep $FOO'
"$KILN" run runtest sh -c 'sleep 3579' >/dev/null 2>&1 &
kiln_pid=$!
for _ in $(seq 100); do
	[ -z "$(procs 'sleep 3579')" ] || break
	sleep 0.1
done
expect_eq "the image's snapshot is mounted while it runs" "$(grep -c "$KILN_ROOT" /proc/self/mountinfo)" "1"
kill -INT "$kiln_pid"
set +e
wait "$kiln_pid"
rc=$?
set -e
expect_eq "Ctrl-C during an image run" "$rc" "130"
expect_eq "no mounts after image runs" "$(grep -c "$KILN_ROOT" /proc/self/mountinfo || true)" "0"

# ---- nothing left behind ----
expect_eq "no mounts left" "$(my_mounts)" "$mounts_before"
expect_eq "no run directories left" "$(ls -A "$TMPDIR")" ""

# ---- without root ----
chmod 755 "$T"
if command -v setpriv >/dev/null; then
	run_kiln_nobody() { set +e; setpriv --reuid 65534 --regid 65534 --clear-groups "$KILN" "$@" >"$T/stdout" 2>"$T/stderr"; rc=$?; set -e; err=$(cat "$T/stderr"); }
	run_kiln_nobody --root /nonexistent run --rootfs "$R" true
	expect_eq "non-root exit code" "$rc" "125"
	expect_contains "non-root says it needs root" "$err" "needs root today (rootless mode is planned)"
fi

finish
