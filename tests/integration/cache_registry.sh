#!/usr/bin/env bash
# Portable cache through a registry (Debian's docker-registry, TLS + basic auth):
# --cache-to type=registry pushes an OCI manifest whose config is kiln's cache metadata
# (the registry must accept the custom config media type), --cache-from type=registry
# pulls it into a brand-new store where unchanged steps are CACHED and only the layers
# used are downloaded. type=inline: the metadata rides in the pushed image's config and
# --cache-from REF (the image) works the same.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/registry_lib.sh"
source "$(dirname "$0")/build_lib.bash"

export SOURCE_DATE_EPOCH=1700000000
make_busybox

reg_make_ca "$T/pki"
reg_start cache --tls "$T/pki" --htpasswd alice s3cret-pw
mkdir -p "$KILN_CERTS_D/$REG_HOST"
cp "$T/pki/ca.crt" "$KILN_CERTS_D/$REG_HOST/ca.crt"

use_root() {
	export KILN_ROOT="$T/$1"
	run_kiln import "$T/busybox-rootfs" busybox
	[ "$rc" -eq 0 ] || fail "import into $1: $err"
}
build_ok() {
	local what=$1
	shift
	run_kiln build --progress plain "$@"
	expect_eq "$what: exit ($err)" "$rc" 0
}
digest_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["containerimage.digest"])' "$1"; }
step_state() {
	local n
	n=$(printf '%s\n' "$1" | grep -F "$2" | head -1 | sed -n 's/^#\([0-9]*\) .*/\1/p')
	printf '%s\n' "$1" | grep -E "^#$n (CACHED|DONE)" | head -1 | awk '{print $2}'
}
fetched() { printf '%s\n' "$1" | sed -n 's/^kiln: cache layers fetched: //p'; }

mkdir -p "$T/ctx"
echo hello >"$T/ctx/a.txt"
cat >"$T/ctx/Dockerfile" <<'DF'
FROM busybox AS tool
RUN echo tool > /tool
FROM busybox
COPY a.txt /a.txt
COPY --from=tool /tool /tool
RUN cat /a.txt /tool > /both
DF

# Without credentials the push of the cache fails and says so.
use_root root1
run_kiln build --progress plain --cache-to "type=registry,ref=$REG_HOST/kiln/cache:main,mode=max" "$T/ctx"
expect_eq "anonymous cache push fails" "$rc" 1
expect_contains "unauthorized" "$err" "unauthorized"
run_kiln login -u alice -p s3cret-pw "$REG_HOST"
expect_eq "login: $err" "$rc" 0

build_ok "export to the registry" --metadata-file "$T/md1" -t app \
	--cache-to "type=registry,ref=$REG_HOST/kiln/cache:main,mode=max" "$T/ctx"
manifest=$(curl -s --cacert "$T/pki/ca.crt" -u alice:s3cret-pw \
	-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	"https://$REG_HOST/v2/kiln/cache/manifests/main")
expect_eq "the registry serves the cache manifest with kiln's config type" \
	"$(printf '%s' "$manifest" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["mediaType"], m["config"]["mediaType"], len(m["layers"]))')" \
	"application/vnd.oci.image.manifest.v1+json application/vnd.kiln.cache.config.v1+json 4"

use_root root2
build_ok "import from the registry" --metadata-file "$T/md2" -t app \
	--cache-from "type=registry,ref=$REG_HOST/kiln/cache:main" "$T/ctx"
expect_eq "every step CACHED" "$(count_cached "$err")" 4
expect_eq "RUN steps did not run" "$(printf '%s\n' "$err" | grep -A1 '\] RUN' | grep -c DONE || true)" 0
expect_eq "same manifest digest" "$(digest_of "$T/md2")" "$(digest_of "$T/md1")"
# Lazy: the tool stage's layer is not needed (COPY --from it was a hit too).
expect_eq "three of four layers fetched" "$(fetched "$err")" "3 of 4"

# A changed file: the tool stage and nothing of the final stage's chain is fetched.
use_root root3
echo changed >"$T/ctx/a.txt"
build_ok "changed" --cache-from "$REG_HOST/kiln/cache:main" -t app "$T/ctx"
expect_eq "only the tool stage's RUN is CACHED" "$(count_cached "$err")" 1
expect_eq "only its layer was downloaded" "$(fetched "$err")" "1 of 4"
run_kiln run app cat /both
expect_eq "content" "$out" "changed
tool"
echo hello >"$T/ctx/a.txt"

# ---- inline: the image carries its own cache ----
use_root root4
build_ok "inline export" -t "$REG_HOST/kiln/app:inline" --cache-to type=inline "$T/ctx"
run_kiln push "$REG_HOST/kiln/app:inline"
expect_eq "push: $err" "$rc" 0
run_kiln inspect "$REG_HOST/kiln/app:inline"
expect_contains "the config has the inline cache label" "$out" "dev.kiln.cache.v1"
use_root root5
build_ok "inline import" --cache-from "type=registry,ref=$REG_HOST/kiln/app:inline" -t app2 "$T/ctx"
expect_eq "the final stage's RUN is CACHED" "$(step_state "$err" "RUN cat /a.txt")" CACHED
expect_eq "the tool stage (not in the image, mode=min) runs" "$(step_state "$err" "RUN echo tool")" DONE

# Inline records name the image's own layers, so a zstd image carries zstd records.
use_root root4z
build_ok "inline zstd export" -o "type=image,name=$REG_HOST/kiln/app:inlinez,compression=zstd" \
	--cache-to type=inline "$T/ctx"
run_kiln push "$REG_HOST/kiln/app:inlinez"
expect_eq "push zstd: $err" "$rc" 0
use_root root5z
build_ok "inline zstd import" --cache-from "type=registry,ref=$REG_HOST/kiln/app:inlinez" -t app3 "$T/ctx"
expect_eq "zstd: the final stage's RUN is CACHED" "$(step_state "$err" "RUN cat /a.txt")" CACHED

# A cache that is not there is a warning, and the build goes on.
use_root root6
build_ok "missing cache" --cache-from "type=registry,ref=$REG_HOST/kiln/none:x" "$T/ctx"
expect_contains "warning" "$err" "not imported"

finish
