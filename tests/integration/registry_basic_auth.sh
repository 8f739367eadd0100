#!/usr/bin/env bash
# Basic auth (htpasswd) over TLS: login validates and stores credentials in config.json,
# a wrong password is "unauthorized" naming the registry, logout removes them.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/registry_lib.sh"

reg_make_ca "$T/pki"
reg_start basic --tls "$T/pki" --htpasswd alice s3cret-pw
export KILN_CERTS_D="$T/certs.d" DOCKER_CONFIG="$T/docker"
mkdir -p "$KILN_CERTS_D/$REG_HOST"
cp "$T/pki/ca.crt" "$KILN_CERTS_D/$REG_HOST/ca.crt"
reg_busybox_rootfs "$T/rootfs"
run_kiln import "$T/rootfs" basic-test/busybox:1
local_digest=$out

# Without credentials the registry refuses.
run_kiln push basic-test/busybox:1 "$REG_HOST/basic/busybox:1"
expect_eq "anonymous push fails" "$rc" "1"
expect_contains "anonymous push: unauthorized" "$err" "unauthorized"
expect_contains "anonymous push names the registry" "$err" "$REG_HOST"

# A wrong password is refused at login and nothing is stored.
run_kiln login -u alice -p wrong "$REG_HOST"
expect_eq "wrong password fails" "$rc" "1"
expect_contains "wrong password: unauthorized" "$err" "unauthorized"
expect_contains "wrong password names the registry" "$err" "$REG_HOST"
expect_eq "no config written" "$([ -e "$DOCKER_CONFIG/config.json" ] && echo yes || echo no)" "no"

# The right one, from stdin, is checked and stored as Docker stores it.
set +e
echo s3cret-pw | "$KILN" login -u alice --password-stdin "$REG_HOST" >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_eq "login ($(cat "$T/err"))" "$rc" "0"
expect_contains "login message" "$(cat "$T/out")" "Login Succeeded"
stored=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["auths"][sys.argv[2]]["auth"])' \
	"$DOCKER_CONFIG/config.json" "$REG_HOST")
expect_eq "config.json auth" "$stored" "$(printf 'alice:s3cret-pw' | base64)"
expect_eq "config.json mode" "$(stat -c %a "$DOCKER_CONFIG/config.json")" "600"

run_kiln push basic-test/busybox:1 "$REG_HOST/basic/busybox:1"
expect_eq "push with credentials ($err)" "$rc" "0"
run_kiln --root "$T/store2" pull "$REG_HOST/basic/busybox:1"
expect_eq "pull with credentials ($err)" "$rc" "0"
expect_eq "pulled digest" "$(echo "$out" | head -1)" "$local_digest"

# Credentials that went stale are refused with the registry's name.
python3 - "$DOCKER_CONFIG/config.json" "$REG_HOST" <<'PY'
import base64, json, sys
p, host = sys.argv[1], sys.argv[2]
c = json.load(open(p))
c["auths"][host]["auth"] = base64.b64encode(b"alice:stale").decode()
json.dump(c, open(p, "w"))
PY
run_kiln --root "$T/store3" pull "$REG_HOST/basic/busybox:1"
expect_eq "stale credentials fail" "$rc" "1"
expect_contains "stale: unauthorized" "$err" "unauthorized"
expect_contains "stale names the registry" "$err" "$REG_HOST"

run_kiln logout "$REG_HOST"
expect_eq "logout" "$rc" "0"
has=$(python3 -c 'import json,sys; print(sys.argv[2] in json.load(open(sys.argv[1])).get("auths",{}))' \
	"$DOCKER_CONFIG/config.json" "$REG_HOST")
expect_eq "logout removed the entry" "$has" "False"
run_kiln logout "$REG_HOST"
expect_eq "second logout fails" "$rc" "1"
expect_contains "second logout message" "$err" "not logged in"

finish
