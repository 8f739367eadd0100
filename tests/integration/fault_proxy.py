#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of a plain-HTTP registry, for kiln's tests.

Binds 127.0.0.1 only. Faults (each applies to requests whose path contains --match):
  --fail500 N   answer the first N matching requests with 500 (or --fail-code)
  --cut         on the first matching GET whose answer is longer than 64 KiB, send the
                headers and half of the body, then drop the connection
  --strip-range          forward without the Range header (a server that ignores it)
  --redirect-blobs BASE  answer blob GETs with 307 to BASE + path (a storage CDN)
  --serve-blobs DIR      be that CDN: serve blobs from a registry's storage DIR
  --manifest-type T      send manifests with Content-Type T instead of the registry's
  --delay-ms N           hold matching answers N ms; the most requests in flight at once
                         are written to LOG.inflight
  --tls-cert/--tls-key   serve HTTPS; --upstream-ca CA: the upstream speaks HTTPS
Every request is appended to --log as "METHOD PATH STATUS RANGE AUTH" (RANGE "-" when
absent, AUTH "auth" or "noauth" for the Authorization header); cut connections log
status "cut".
"""
import argparse
import http.client
import http.server
import os
import re
import ssl
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", default="", help="host:port of the registry")
    ap.add_argument("--match", default="/v2/")
    ap.add_argument("--fail500", type=int, default=0)
    ap.add_argument("--fail-code", type=int, default=500)
    ap.add_argument("--cut", action="store_true")
    ap.add_argument("--manifest-type")
    ap.add_argument("--strip-range", action="store_true")
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--redirect-blobs")
    ap.add_argument("--serve-blobs")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--upstream-ca")
    ap.add_argument("--log", required=True)
    a = ap.parse_args()

    lock = threading.Lock()
    state = {"failed": 0, "cut": False, "inflight": 0, "max": 0}

    def log_line(line):
        with lock:
            with open(a.log, "a") as f:
                f.write(line + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def handle_any(self):
            rng = self.headers.get("Range", "-")
            who = "auth" if self.headers.get("Authorization") else "noauth"
            log = lambda line: log_line(line + " " + who)
            blob = re.search(r"/blobs/sha256:([0-9a-f]{64})$", self.path.split("?")[0])
            if a.serve_blobs:
                path = None
                if blob:
                    h = blob.group(1)
                    path = os.path.join(a.serve_blobs, "docker/registry/v2/blobs/sha256",
                                        h[:2], h, "data")
                if not path or not os.path.exists(path):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    log("%s %s 404 %s" % (self.command, self.path, rng))
                    return
                data = open(path, "rb").read()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                log("%s %s 200 %s" % (self.command, self.path, rng))
                return
            if a.redirect_blobs and blob and self.command == "GET":
                self.send_response(307)
                self.send_header("Location", a.redirect_blobs + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                log("%s %s 307 %s" % (self.command, self.path, rng))
                return
            n = int(self.headers.get("Content-Length", "0") or 0)
            body = self.rfile.read(n) if n else b""
            matched = a.match in self.path
            with lock:
                fail = matched and state["failed"] < a.fail500
                if fail:
                    state["failed"] += 1
            if fail:
                msg = b'{"errors":[{"code":"UNKNOWN","message":"injected"}]}'
                self.send_response(a.fail_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(msg)
                log("%s %s %d %s" % (self.command, self.path, a.fail_code, rng))
                return
            if a.upstream_ca:
                ctx = ssl.create_default_context(cafile=a.upstream_ca)
                conn = http.client.HTTPSConnection(a.upstream, timeout=30, context=ctx)
            else:
                conn = http.client.HTTPConnection(a.upstream, timeout=30)
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("connection", "content-length")
                       and not (a.strip_range and k.lower() == "range")}
            if body or self.command in ("PUT", "POST", "PATCH"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if a.delay_ms and matched:
                with lock:
                    state["inflight"] += 1
                    state["max"] = max(state["max"], state["inflight"])
                    with open(a.log + ".inflight", "w") as f:
                        f.write("%d\n" % state["max"])
                time.sleep(a.delay_ms / 1000)
                with lock:
                    state["inflight"] -= 1
            cut = False
            if a.cut and matched and self.command == "GET" and len(data) > 65536:
                with lock:
                    cut = not state["cut"]
                    state["cut"] = True
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() in ("connection", "transfer-encoding", "content-length"):
                    continue
                if (k.lower() == "content-type" and a.manifest_type and
                        "/manifests/" in self.path):
                    v = a.manifest_type
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command == "HEAD":
                log("%s %s %d %s" % (self.command, self.path, resp.status, rng))
                return
            if cut:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                log("%s %s cut %s" % (self.command, self.path, rng))
                self.close_connection = True
                return
            self.wfile.write(data)
            log("%s %s %d %s" % (self.command, self.path, resp.status, rng))

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
