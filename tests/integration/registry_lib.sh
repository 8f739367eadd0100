# Helpers for tests that talk to real registries on loopback. Source after tests/lib.sh.
#
#   reg_make_ca DIR                 test CA (DIR/ca.crt, DIR/ca.key), a server cert for
#                                   127.0.0.1 (DIR/server.crt, DIR/server.key) and a client
#                                   cert (DIR/client.cert, DIR/client.key)
#   reg_start NAME [--tls DIR] [--client-ca CA] [--htpasswd USER PASS]
#             [--token REALM ISSUER CERT]
#                                   start Debian's docker-registry on 127.0.0.1:random;
#                                   sets REG_PORT, REG_HOST (127.0.0.1:PORT), REG_DATA
#   reg_token_server_start DIR USER PASS [token_server.py options]
#                                   HTTPS token server (certs from reg_make_ca DIR); sets
#                                   TOKEN_PORT, TOKEN_REALM, TOKEN_ISSUER, TOKEN_CERT, TOKEN_LOG
#   reg_proxy_start UPSTREAM LOG [fault_proxy.py options]  sets PROXY_PORT
#   reg_busybox_rootfs DIR          a busybox root filesystem
# Every process started here is killed on exit, on success or failure.
# Run directly (not sourced), this file tests itself: a registry starts, answers, stops.

REG_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Never the machine's credentials or CAs: each test has its own.
export DOCKER_CONFIG="$T/docker" KILN_CERTS_D="$T/certs.d"
REG_PIDS=()

reg_cleanup() {
	local pid
	for pid in "${REG_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${REG_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	REG_PIDS=()
}
trap 'reg_cleanup; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

reg_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# reg_wait_http URL [CURL_ARGS...]: until anything answers over HTTP(S) at URL (20 s at most).
reg_wait_http() {
	local i
	for i in $(seq 1 100); do
		if curl -sk -o /dev/null --max-time 2 "${@:2}" "$1"; then
			return 0
		fi
		sleep 0.2
	done
	echo "nothing answered at $1" >&2
	return 1
}

reg_make_ca() {
	local d=$1
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kiln test CA" \
		-keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/ext.cnf" -out "$d/server.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=kiln test client" \
		-keyout "$d/client.key" -out "$d/client.csr" 2>/dev/null
	printf 'extendedKeyUsage=clientAuth\n' >"$d/client-ext.cnf"
	openssl x509 -req -in "$d/client.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/client-ext.cnf" -out "$d/client.cert" 2>/dev/null
}

reg_start() {
	local name=$1
	shift
	local dir="$T/registry-$name" tls="" auth="" wait_args=()
	mkdir -p "$dir/data"
	REG_PORT=$(reg_free_port)
	while [ $# -gt 0 ]; do
		case $1 in
		--tls)
			tls="  tls:
    certificate: $2/server.crt
    key: $2/server.key"
			shift 2
			;;
		--client-ca)
			tls="$tls
    clientcas:
      - $2"
			# reg_make_ca puts the client pair next to the CA.
			wait_args=(--cert "$(dirname "$2")/client.cert" --key "$(dirname "$2")/client.key")
			shift 2
			;;
		--htpasswd)
			htpasswd -Bbn "$2" "$3" >"$dir/htpasswd"
			auth="auth:
  htpasswd:
    realm: kiln-test
    path: $dir/htpasswd"
			shift 3
			;;
		--token)
			auth="auth:
  token:
    realm: $2
    service: kiln-test-registry
    issuer: $3
    rootcertbundle: $4"
			shift 4
			;;
		*)
			echo "reg_start: unknown option $1" >&2
			return 1
			;;
		esac
	done
	cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REG_PORT
$tls
$auth
EOF
	docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
	REG_PIDS+=($!)
	REG_HOST=127.0.0.1:$REG_PORT
	REG_DATA=$dir/data
	local scheme=http
	[ -n "$tls" ] && scheme=https
	reg_wait_http "$scheme://$REG_HOST/v2/" "${wait_args[@]}" || {
		cat "$dir/log" >&2
		return 1
	}
}

reg_token_server_start() {
	local d=$1
	TOKEN_PORT=$(reg_free_port)
	TOKEN_ISSUER=kiln-test-issuer
	TOKEN_LOG="$T/token.log"
	: >"$TOKEN_LOG"
	# The signing key pair: a self-signed cert the registry trusts as its rootcertbundle.
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kiln token signer" \
		-keyout "$d/sign.key" -out "$d/sign.crt" 2>/dev/null
	TOKEN_CERT=$d/sign.crt
	python3 "$REG_LIB_DIR/token_server.py" --port "$TOKEN_PORT" \
		--tls-cert "$d/server.crt" --tls-key "$d/server.key" \
		--sign-key "$d/sign.key" --sign-cert "$d/sign.crt" --issuer "$TOKEN_ISSUER" \
		--user "$2" --password "$3" --log "$TOKEN_LOG" "${@:4}" >"$T/token-server.out" 2>&1 &
	REG_PIDS+=($!)
	TOKEN_REALM="https://127.0.0.1:$TOKEN_PORT/token"
	reg_wait_http "$TOKEN_REALM" || {
		cat "$T/token-server.out" >&2
		return 1
	}
}

reg_proxy_start() {
	local upstream=$1 log=$2
	shift 2
	PROXY_PORT=$(reg_free_port)
	: >"$log"
	python3 "$REG_LIB_DIR/fault_proxy.py" --port "$PROXY_PORT" --upstream "$upstream" \
		--log "$log" "$@" >"$T/proxy-$PROXY_PORT.out" 2>&1 &
	REG_PIDS+=($!)
	local i
	for i in $(seq 1 100); do
		grep -q ready "$T/proxy-$PROXY_PORT.out" 2>/dev/null && return 0
		sleep 0.1
	done
	cat "$T/proxy-$PROXY_PORT.out" >&2
	return 1
}

reg_busybox_rootfs() {
	local d=$1
	mkdir -p "$d/bin" "$d/etc" "$d/tmp"
	cp /bin/busybox "$d/bin/busybox"
	ln -sf busybox "$d/bin/sh"
	ln -sf busybox "$d/bin/ls"
	echo "root:x:0:0:root:/root:/bin/sh" >"$d/etc/passwd"
}

# Self-test when run as a script.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	source "$REG_LIB_DIR/../lib.sh"
	trap 'reg_cleanup; rm -rf "$T"' EXIT
	reg_start selftest
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$REG_HOST/v2/")
	expect_eq "registry answers /v2/" "$code" "200"
	pid=${REG_PIDS[0]}
	reg_cleanup
	if kill -0 "$pid" 2>/dev/null; then alive=yes; else alive=no; fi
	expect_eq "registry stopped" "$alive" "no"
	finish
fi
