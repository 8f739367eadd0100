#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of a plain-HTTP registry, for kiln's tests.

Binds 127.0.0.1 only. Faults (each applies to requests whose path contains --match):
  --fail500 N   answer the first N matching requests with 500
  --cut         on the first matching GET whose answer is longer than 64 KiB, send the
                headers and half of the body, then drop the connection
Every request is appended to --log as "METHOD PATH STATUS RANGE" (RANGE "-" when absent);
cut connections log status "cut".
"""
import argparse
import http.client
import http.server
import sys
import threading


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="host:port of the registry")
    ap.add_argument("--match", default="/v2/")
    ap.add_argument("--fail500", type=int, default=0)
    ap.add_argument("--cut", action="store_true")
    ap.add_argument("--log", required=True)
    a = ap.parse_args()

    lock = threading.Lock()
    state = {"failed": 0, "cut": False}

    def log(line):
        with lock:
            with open(a.log, "a") as f:
                f.write(line + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def handle_any(self):
            rng = self.headers.get("Range", "-")
            n = int(self.headers.get("Content-Length", "0") or 0)
            body = self.rfile.read(n) if n else b""
            matched = a.match in self.path
            with lock:
                fail = matched and state["failed"] < a.fail500
                if fail:
                    state["failed"] += 1
            if fail:
                msg = b'{"errors":[{"code":"UNKNOWN","message":"injected"}]}'
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(msg)
                log("%s %s 500 %s" % (self.command, self.path, rng))
                return
            conn = http.client.HTTPConnection(a.upstream, timeout=30)
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("connection", "content-length")}
            if body or self.command in ("PUT", "POST", "PATCH"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            cut = False
            if a.cut and matched and self.command == "GET" and len(data) > 65536:
                with lock:
                    cut = not state["cut"]
                    state["cut"] = True
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() in ("connection", "transfer-encoding", "content-length"):
                    continue
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
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
