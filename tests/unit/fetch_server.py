#!/usr/bin/env python3
"""The HTTP server test_modules fetches from (UKEY_FETCH_URL): prints its
base URL (127.0.0.1, a free port) and serves until it is killed.

  GET  /hello          200 "hello" (with a Date header, as every answer)
  POST /echo           200 "<Content-Type> <body length>"
  GET  /redirect/N     302 to /redirect/N-1, and /redirect/1 to /hello
  GET  /big            200 with 8 MiB + 1 bytes (one more than fetches take)
  GET  /slow           200 after 3 s
  GET  /proxy.pac      a PAC file: every URL through this server as proxy
  GET  http://HOST/... (a proxy's request) 200 "proxied http://HOST/..."
  anything else        404
"""
import http.server
import sys
import time

BIG = 8 * 1024 * 1024 + 1


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("http://"):
            self.answer(200, ("proxied " + self.path).encode())
        elif self.path == "/proxy.pac":
            port = self.server.server_address[1]
            self.answer(200, ('function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:%d"; }' % port).encode(),
                        [("Content-Type", "application/x-ns-proxy-autoconfig")])
        elif self.path == "/hello":
            self.answer(200, b"hello")
        elif self.path.startswith("/redirect/") and self.path[10:].isdigit():
            n = int(self.path[10:])
            self.answer(302, headers=[("Location", "/hello" if n <= 1 else "/redirect/%d" % (n - 1))])
        elif self.path == "/big":
            self.answer(200, b"x" * BIG)
        elif self.path == "/slow":
            time.sleep(3)
            self.answer(200, b"late")
        else:
            self.answer(404, b"not here")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        if self.path == "/echo":
            self.answer(200, ("%s %d" % (self.headers.get("Content-Type"), len(body))).encode())
        else:
            self.answer(404, b"not here")


def main():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("http://127.0.0.1:%d" % httpd.server_address[1], flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
