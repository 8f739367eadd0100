#!/usr/bin/env bash
# Reproducible images: two clean --no-cache builds (each in its own empty store) with
# SOURCE_DATE_EPOCH and rewrite-timestamp=true give the same manifest digest, for gzip and
# for zstd, and the same OCI archive bytes. A secret's bytes are in no blob of the store
# (layers decompressed, configs, manifests), no other file of the store, and no log.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/build_lib.bash"

CTX="$T/ctx"
mkdir -p "$CTX"
echo "context file" >"$CTX/a.txt"
touch -d @1600000000 "$CTX/a.txt"
printf 'kiln-s3cr3t-%s' "$$" >"$T/secret"
cat >"$CTX/Dockerfile" <<'DF'
FROM busybox
ARG SOURCE_DATE_EPOCH
RUN mkdir -p /out && date +%s%N >/out/stamp-dir-made && rm /out/stamp-dir-made \
    && dd if=/dev/zero of=/out/zeros bs=1k count=2048 2>/dev/null && echo built >/out/msg
RUN --mount=type=secret,id=tok test -s /run/secrets/tok && wc -c </run/secrets/tok >/out/len
COPY a.txt /out/
ENV DONE=1
CMD ["cat", "/out/msg"]
DF

build_in() { # ROOT COMPRESSION OUT.tar -> sets digest
	KILN_ROOT="$1"
	export KILN_ROOT
	if [ ! -d "$1" ]; then
		if [ -d "$T/busybox-rootfs" ]; then
			run_kiln import "$T/busybox-rootfs" busybox
		else
			make_busybox
		fi
	fi
	run_kiln build --no-cache --secret id=tok,src="$T/secret" --metadata-file "$T/md.json" \
		-o "type=oci,dest=$3,compression=$2,rewrite-timestamp=true" "$CTX"
	expect_eq "build in $1 ($2): $err" "$rc" 0
	printf '%s\n%s\n' "$out" "$err" >>"$T/logs"
	digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["containerimage.digest"])' "$T/md.json")
}

export SOURCE_DATE_EPOCH=1700000000
build_in "$T/root1" gzip "$T/g1.tar"
g1=$digest
sleep 1.1 # a second later: mtimes written by RUN differ
build_in "$T/root2" gzip "$T/g2.tar"
expect_eq "gzip: two clean --no-cache builds, one manifest digest" "$digest" "$g1"
expect_eq "gzip: the same archive bytes" "$(sha256sum <"$T/g2.tar")" "$(sha256sum <"$T/g1.tar")"
# an unchanged rebuild re-exports without compressing anything again: the same bytes
KILN_ROOT="$T/root1" run_kiln build --secret id=tok,src="$T/secret" \
	-o "type=oci,dest=$T/g1-again.tar,rewrite-timestamp=true" "$CTX"
expect_eq "unchanged rebuild: $err" "$rc" 0
expect_contains "no layer compressed again" "$err" "(gzip, 0 new of 3)"
expect_eq "the re-export is the same archive" "$(sha256sum <"$T/g1-again.tar")" "$(sha256sum <"$T/g1.tar")"
build_in "$T/root1" zstd "$T/z1.tar"
z1=$digest
sleep 1.1
build_in "$T/root2" zstd "$T/z2.tar"
expect_eq "zstd: two clean --no-cache builds, one manifest digest" "$digest" "$z1"
expect_eq "zstd and gzip differ" "$([ "$z1" != "$g1" ] && echo yes)" yes
cfg=$(skopeo inspect --config --raw "oci-archive:$T/g1.tar")
expect_contains "created is SOURCE_DATE_EPOCH" "$cfg" '"created":"2023-11-14T22:13:20Z"'
expect_eq "every history entry at SOURCE_DATE_EPOCH" \
	"$(printf '%s' "$cfg" | python3 -c 'import json,sys; print(sorted({h["created"] for h in json.load(sys.stdin)["history"][1:]}))')" \
	"['2023-11-14T22:13:20Z']"
mkdir "$T/x"
tar -xf "$T/g1.tar" -C "$T/x"
newest=0
for b in "$T"/x/blobs/sha256/*; do
	if gzip -t "$b" 2>/dev/null; then
		t=$(gzip -dc "$b" | tar -tvf - --numeric-owner 2>/dev/null | awk '{print $4" "$5}' | sort | tail -1)
		[ -z "$t" ] || { s=$(date -u -d "$t" +%s); [ "$s" -le "$newest" ] || newest=$s; }
	fi
done
expect_eq "no file in a layer is newer than SOURCE_DATE_EPOCH" "$([ "$newest" -le 1700000000 ] && echo yes)" yes
expect_eq "rewrite-timestamp leaves older files alone" \
	"$(gzip -dc "$T"/x/blobs/sha256/* 2>/dev/null | tar -tvf - out/a.txt 2>/dev/null | awk '{print $4}' | head -1)" \
	"2020-09-13"

# the secret: in no blob, decompressed or not, in no file of either store, in no log
secret=$(cat "$T/secret")
leaks=0
for root in "$T/root1" "$T/root2"; do
	for b in "$root"/content/blobs/sha256/*; do
		for dec in "gzip -dc" "zstd -dc" "cat"; do
			if $dec "$b" 2>/dev/null | grep -aq "$secret"; then
				echo "secret in blob $b ($dec)" >&2
				leaks=$((leaks + 1))
			fi
		done
	done
	if grep -rlaq --exclude-dir=secret "$secret" "$root" 2>/dev/null; then
		grep -rla "$secret" "$root" >&2
		leaks=$((leaks + 1))
	fi
done
grep -aq "$secret" "$T/logs" && leaks=$((leaks + 1))
expect_eq "the secret's bytes are nowhere" "$leaks" 0
len=""
for b in "$T"/x/blobs/sha256/*; do
	l=$(gzip -dc "$b" 2>/dev/null | tar -xOf - out/len 2>/dev/null) && len=$l
done
expect_eq "the secret was there to read in RUN" "$len" "${#secret}"
finish
