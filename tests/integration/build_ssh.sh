#!/usr/bin/env bash
# kiln build --ssh: key files served by kiln's own agent, several ids, an agent socket
# ($SSH_AUTH_SOCK), and missing ids. The RUN steps use the host's ssh-add and ssh-keygen
# (copied into the base image with their libraries), so OpenSSH itself talks to the agent
# from inside the container.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"
for tool in ssh-keygen ssh-add ssh-agent ldd; do
	command -v $tool >/dev/null || { echo "FAIL: $tool (openssh-client) is needed" >&2; exit 1; }
done

make_busybox
R="$T/busybox-rootfs"
for bin in /usr/bin/ssh-add /usr/bin/ssh-keygen; do
	cp -L --parents "$bin" "$R"
	for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
		cp -L --parents "$lib" "$R"
	done
done
run_kiln import "$R" sshtools
expect_eq "import the tools image: $err" "$rc" 0

CTX="$T/ctx"
mkdir -p "$CTX"
ssh-keygen -q -t ed25519 -N '' -C ed-key -f "$T/ed"
ssh-keygen -q -t rsa -b 2048 -N '' -C rsa-key -f "$T/rsa"
ssh-keygen -q -t ecdsa -m PEM -N '' -C ec-key -f "$T/ec"
ssh-keygen -q -t ed25519 -N 'a passphrase' -f "$T/locked"
cp "$T/ed.pub" "$T/rsa.pub" "$CTX/"
cat >"$CTX/Dockerfile" <<'DF'
FROM sshtools
COPY ed.pub rsa.pub /keys/
RUN --mount=type=ssh ls -l $SSH_AUTH_SOCK > /default-socket && ssh-add -l > /default-keys
RUN --mount=type=ssh,id=deploy,target=/run/deploy.sock SSH_AUTH_SOCK=/run/deploy.sock ssh-add -l > /deploy-keys
RUN --mount=type=ssh echo "built by kiln" > /data && ssh-keygen -q -Y sign -f /keys/rsa.pub -n file /data
RUN --mount=type=ssh,id=absent,required=false sh -c 'echo "sock=$SSH_AUTH_SOCK" > /absent'
RUN mkdir -m 777 /out
RUN --mount=type=ssh stat -c '%u %g %a' $SSH_AUTH_SOCK > /out/owner-default
RUN --mount=type=ssh,uid=1000,gid=1000,mode=0640 stat -c '%u %g %a' $SSH_AUTH_SOCK > /out/owner-set
USER app
RUN --mount=type=ssh,uid=1000 ssh-add -l > /out/as-app
RUN --mount=type=ssh ssh-add -l > /out/as-app-default 2>&1 || echo "failed: $?" >> /out/as-app-default
RUN --mount=type=ssh,mode=0666 ssh-add -l > /out/as-app-0666
RUN --mount=type=ssh,id=deploy,gid=1000,mode=0660 ssh-add -l > /out/as-app-group
DF
run_kiln build --ssh "default=$T/ed,$T/rsa" --ssh "deploy=$T/ec" -t sshimg "$CTX"
expect_eq "build with key files: $err" "$rc" 0
run_kiln run sshimg cat /default-socket
expect_contains "the agent socket is mounted" "$out" "/run/buildkit/ssh_agent.0"
expect_eq "it is a socket" "${out:0:1}" "s"
run_kiln run sshimg cat /default-keys
expect_contains "ssh-add -l sees the ed25519 key" "$out" "$(ssh-keygen -lf "$T/ed.pub" | cut -d' ' -f2)"
expect_contains "and the RSA key" "$out" "$(ssh-keygen -lf "$T/rsa.pub" | cut -d' ' -f2)"
expect_contains "with their comments" "$out" "ed-key (ED25519)"
run_kiln run sshimg cat /deploy-keys
expect_eq "another id has its own agent with its own key" "$(printf '%s\n' "$out" | awk '{print $2, $NF}')" \
	"$(ssh-keygen -lf "$T/ec.pub" | awk '{print $2, $NF}')"
expect_contains "a PEM key (no comment) is named by its file" "$out" "$T/ec (ECDSA)"
run_kiln run sshimg cat /data.sig
printf '%s\n' "$out" >"$T/data.sig"
expect_eq "a signature made in the build by the agent checks out on the host" \
	"$(printf 'built by kiln\n' | ssh-keygen -Y check-novalidate -n file -s "$T/data.sig" >/dev/null 2>&1 && echo good)" "good"
run_kiln run sshimg cat /out/owner-default
expect_eq "the socket is root's with mode 0600 by default, as BuildKit's" "$out" "0 0 600"
run_kiln run sshimg cat /out/owner-set
expect_eq "uid, gid and mode apply to the socket the step sees" "$out" "1000 1000 640"
run_kiln run sshimg cat /out/as-app
expect_contains "a step run as a USER can use the agent when uid= says so" "$out" "ed-key (ED25519)"
run_kiln run sshimg cat /out/as-app-default
expect_contains "with the default owner and mode the USER cannot" "$out" "failed: "
expect_contains "as the socket refuses it" "$out" "ermission denied"
run_kiln run sshimg cat /out/as-app-0666
expect_contains "mode=0666 lets any user use the agent" "$out" "ed-key (ED25519)"
run_kiln run sshimg cat /out/as-app-group
expect_contains "gid= and a group mode let the USER's group use it" "$out" "$T/ec (ECDSA)"
run_kiln run sshimg cat /absent
expect_eq "an optional id that was not given is not mounted" "$out" "sock="
expect_eq "the agents' directories are gone after the build" "$(ls -A "$KILN_ROOT/tmp")" ""

# ---- an agent socket: --ssh default takes $SSH_AUTH_SOCK ----
eval "$(ssh-agent -s -a "$T/agent.sock")" >/dev/null
trap 'kill "$SSH_AGENT_PID" 2>/dev/null; rm -rf "$T"' EXIT
ssh-add -q "$T/ec" 2>/dev/null
cat >"$CTX/Dockerfile" <<'DF'
FROM sshtools
RUN --mount=type=ssh ssh-add -l > /keys
DF
run_kiln build --ssh default -t sshsock "$CTX"
expect_eq "build with the caller's agent: $err" "$rc" 0
run_kiln run sshsock cat /keys
expect_contains "the caller's agent is the one mounted" "$out" "$(ssh-keygen -lf "$T/ec.pub" | cut -d' ' -f2)"
run_kiln build --ssh "default=$T/agent.sock" --no-cache -t sshsock "$CTX"
expect_eq "ID=SOCKET names the agent: $err" "$rc" 0
before=$(stat -c '%u %g %a' "$T/agent.sock")
cat >"$CTX/Dockerfile" <<'DF'
FROM sshtools
USER app
RUN --mount=type=ssh,uid=1000,mode=0600 ssh-add -l > /tmp/keys
DF
run_kiln build --ssh default -t sshsockapp "$CTX"
expect_eq "a USER reaches the caller's agent through its own socket: $err" "$rc" 0
run_kiln run sshsockapp cat /tmp/keys
expect_contains "and the agent answers it" "$out" "$(ssh-keygen -lf "$T/ec.pub" | cut -d' ' -f2)"
expect_eq "the caller's socket keeps its owner and mode" "$(stat -c '%u %g %a' "$T/agent.sock")" "$before"

# ---- what fails ----
cat >"$CTX/Dockerfile" <<'DF'
FROM sshtools
RUN --mount=type=ssh,id=github,required=true ssh-add -l
DF
run_kiln build --ssh "default=$T/ed" "$CTX"
expect_eq "a required ssh id that was not given fails the build" "$rc" 1
expect_contains "naming the Dockerfile line and the id" "$err" "Dockerfile:2: "
expect_contains "and the id" "$err" "id=github"
run_kiln build --ssh "github=$T/locked" "$CTX"
expect_eq "an encrypted key fails" "$rc" 1
expect_contains "and says so" "$err" "the key is encrypted"
run_kiln build --ssh "github=$T/ed.pub" "$CTX"
expect_eq "a public key is no private key" "$rc" 1
expect_contains "and says so" "$err" "not a private key"
run_kiln build --ssh "github=$T/ed" --ssh "github=$T/rsa" "$CTX"
expect_eq "an id given twice fails" "$rc" 1
expect_contains "and says so" "$err" "given twice"
run_kiln build --ssh "github=$T/nothing" "$CTX"
expect_eq "a missing file fails" "$rc" 1
expect_contains "naming it" "$err" "nothing"
SSH_AUTH_SOCK= run_kiln build --ssh default "$CTX"
expect_eq "--ssh default without \$SSH_AUTH_SOCK fails" "$rc" 1
expect_contains "and says why" "$err" "SSH_AUTH_SOCK is not set"
finish
