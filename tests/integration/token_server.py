#!/usr/bin/env python3
"""A tiny Docker registry token server for kiln's tests (distribution token spec).

Issues RS256 JWTs whose header carries the signing certificate in "x5c" (the registry
checks it against its rootcertbundle). Signing is done with `openssl dgst -sha256 -sign`.
Anonymous callers get "pull" only; USER:PASSWORD get every action asked for; other
credentials get 401. Serves HTTPS with --tls-cert/--tls-key. Binds 127.0.0.1 only.
Every request is appended to --log as "anon|user|bad SCOPE...".
"""
import argparse
import base64
import http.server
import json
import ssl
import subprocess
import sys
import time
import urllib.parse
import uuid


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls-cert", required=True)
    ap.add_argument("--tls-key", required=True)
    ap.add_argument("--sign-key", required=True)
    ap.add_argument("--sign-cert", required=True)
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--expires-in", type=int, default=300)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()

    with open(a.sign_cert) as f:
        pem = f.read()
    der_b64 = "".join(
        l for l in pem.splitlines() if l and not l.startswith("-----")
    )

    def sign(payload: dict) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": [der_b64]}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(
            json.dumps(payload).encode()
        )
        sig = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", a.sign_key],
            input=signing_input.encode(),
            capture_output=True,
            check=True,
            timeout=20,
        ).stdout
        return signing_input + "." + b64url(sig)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def reply(self, status, body: dict, extra=None):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            q = urllib.parse.parse_qs(url.query)
            who = "anon"
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                try:
                    user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                except Exception:
                    user, pw = "", None
                who = "user" if (user, pw) == (a.user, a.password) else "bad"
            scopes = q.get("scope", [])
            with open(a.log, "a") as f:
                f.write("%s %s\n" % (who, " ".join(scopes)))
            if who == "bad":
                self.reply(401, {"details": "incorrect username or password"},
                           {"WWW-Authenticate": 'Basic realm="kiln-test-token"'})
                return
            access = []
            for s in scopes:
                parts = s.split(":")
                if len(parts) < 3:
                    continue
                typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
                if who == "anon":
                    actions = [x for x in actions if x == "pull"]
                access.append({"type": typ, "name": name, "actions": actions})
            now = int(time.time())
            claims = {
                "iss": a.issuer,
                "sub": a.user if who == "user" else "",
                "aud": q.get("service", [""])[0],
                "exp": now + a.expires_in,
                "nbf": now - 10,
                "iat": now,
                "jti": uuid.uuid4().hex,
                "access": access,
            }
            tok = sign(claims)
            self.reply(200, {"token": tok, "access_token": tok,
                             "expires_in": a.expires_in})

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.tls_cert, a.tls_key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
