"""The request guard through the real agent: Host, Origin/CORS, Fetch
Metadata, content type, size caps, static files and traversal, binding
(security.md 7.1 WEB-01..06, 7.6 SRV-01..03)."""
import http.client
import json
import os
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent as harness  # noqa: E402

OK = "https://portal.gov.example"
WILD = "https://*.example.gov.cn"
EVIL = "https://attacker.example"


def acao_headers(headers):
    return [k for k in headers.keys() if k.lower().startswith("access-control-")]


class Guard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.agent = harness.Agent(args=["--allow-origin", OK, "--allow-origin", WILD]).start()

    @classmethod
    def tearDownClass(cls):
        cls.agent.cleanup()

    def error_code(self, body):
        return json.loads(body)["error"]["code"]

    def test_host_rebinding_refused(self):
        p = self.agent.port
        for host in ("attacker.example:%d" % p, "localhost:%d" % (p + 1), "localhost",
                     "localhost:%d.evil.example" % p, "127.0.0.1:%d@evil.example" % p,
                     "0.0.0.0:%d" % p, "127.0.0.2:%d" % p):
            status, headers, body = self.agent.request("GET", "/api/v1/status", {"Origin": OK},
                                                       host_header=host)
            self.assertEqual(status, 421, host)
            self.assertEqual(self.error_code(body), "HOST_NOT_ALLOWED")
            self.assertEqual(acao_headers(headers), [], host)
        for host in ("127.0.0.1:%d" % p, "localhost:%d" % p, "[::1]:%d" % p):
            self.assertEqual(self.agent.request("GET", "/api/v1/status", host_header=host)[0], 200)

    def test_duplicate_host_or_origin_refused(self):
        p = self.agent.port
        status, _, body = self.agent.request(
            "GET", "/api/v1/status", [("Host", "127.0.0.1:%d" % p)], host_header="127.0.0.1:%d" % p)
        self.assertIn(status, (400, 421))
        status, headers, body = self.agent.request("GET", "/api/v1/status", [("Origin", OK), ("Origin", EVIL)])
        self.assertEqual(status, 400)
        self.assertEqual(acao_headers(headers), [])

    def test_foreign_origin_gets_403_and_no_cors(self):
        vectors = [EVIL, "null", "", "https://portal.gov.example.attacker.example",
                   "https://evilportal.gov.example", "http://portal.gov.example",
                   "https://portal.gov.example:444", "https://portal.gov.example.",
                   "https://PORTAL.gov.example", "https://example.gov.cn"]
        for origin in vectors:
            for method, path in (("GET", "/api/v1/status"), ("GET", "/"), ("GET", "/app.js"),
                                 ("POST", "/api/v1/status")):
                status, headers, body = self.agent.request(
                    method, path, {"Origin": origin, "Content-Type": "application/json"},
                    body="{}" if method == "POST" else None)
                self.assertEqual(status, 403, (origin, method, path))
                self.assertEqual(self.error_code(body), "ORIGIN_NOT_ALLOWED")
                self.assertEqual(acao_headers(headers), [], origin)
                self.assertNotIn("0.1", body.decode(), "no version before the guard")

    def test_allowed_origin_exact_echo(self):
        for origin in (OK, "https://a.example.gov.cn", "https://x.y.example.gov.cn",
                       "https://127.0.0.1:%d" % self.agent.port):
            status, headers, _ = self.agent.request("GET", "/api/v1/status", {"Origin": origin})
            self.assertEqual(status, 200, origin)
            self.assertEqual(headers["Access-Control-Allow-Origin"], origin)
            self.assertIn("Origin", headers["Vary"])
            self.assertIsNone(headers.get("Access-Control-Allow-Credentials"))

    def test_preflight_and_private_network(self):
        req = {"Origin": OK, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type",
               "Access-Control-Request-Private-Network": "true"}
        status, headers, _ = self.agent.request("OPTIONS", "/api/v1/status", req)
        self.assertEqual(status, 204)
        self.assertEqual(headers["Access-Control-Allow-Origin"], OK)
        self.assertEqual(headers["Access-Control-Allow-Private-Network"], "true")
        self.assertIn("Content-Type", headers["Access-Control-Allow-Headers"])
        self.assertIn("GET", headers["Access-Control-Allow-Methods"])
        self.assertIsNone(headers.get("Access-Control-Allow-Credentials"))
        # without the PNA request header: no PNA answer
        del req["Access-Control-Request-Private-Network"]
        status, headers, _ = self.agent.request("OPTIONS", "/api/v1/status", req)
        self.assertEqual(status, 204)
        self.assertIsNone(headers.get("Access-Control-Allow-Private-Network"))
        # from a foreign origin: 403, nothing
        req.update({"Origin": EVIL, "Access-Control-Request-Private-Network": "true"})
        status, headers, _ = self.agent.request("OPTIONS", "/api/v1/status", req)
        self.assertEqual(status, 403)
        self.assertEqual(acao_headers(headers), [])

    def test_fetch_metadata_without_origin(self):
        for site in ("cross-site", "same-site"):
            status, headers, body = self.agent.request("GET", "/api/v1/status", {"Sec-Fetch-Site": site})
            self.assertEqual(status, 403, site)
            self.assertEqual(self.error_code(body), "ORIGIN_NOT_ALLOWED")
        for site in ("same-origin", "none"):
            self.assertEqual(self.agent.request("GET", "/api/v1/status", {"Sec-Fetch-Site": site})[0], 200)
        # A portal's <script src> of the SDK/static files is fine.
        self.assertEqual(self.agent.request("GET", "/app.js", {"Sec-Fetch-Site": "cross-site"})[0], 200)
        # No headers at all (curl, the CLI): served.
        self.assertEqual(self.agent.request("GET", "/api/v1/status")[0], 200)

    def test_state_changing_requests_need_json(self):
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                      None):
            headers = {"Origin": OK}
            if ctype:
                headers["Content-Type"] = ctype
            for method in ("POST", "PUT", "DELETE"):
                status, h, body = self.agent.request(method, "/api/v1/status", headers, body="{}")
                self.assertEqual(status, 415, (ctype, method))
                self.assertEqual(self.error_code(body), "UNSUPPORTED_MEDIA_TYPE")
                self.assertEqual(h["Access-Control-Allow-Origin"], OK)

    def test_oversized_body(self):
        big = "{" + '"a":"' + "x" * (70 * 1024) + '"}'
        status, _, body = self.agent.request("POST", "/api/v1/status",
                                             {"Content-Type": "application/json"}, body=big)
        self.assertEqual(status, 413)
        self.assertEqual(self.error_code(body), "BODY_TOO_LARGE")
        self.assertEqual(self.agent.request("GET", "/api/v1/status")[0], 200)
        # Headers and a 2 MB body in one write: the HTTP layer answers and
        # closes with most of the body unread, and the client must still get
        # the whole answer, not a reset in the middle of its upload.
        body = b'{"a":"' + b"x" * (2 << 20) + b'"}'
        head = ("POST /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" % (self.agent.port, len(body))).encode()
        # The close races the upload; busy processes on every core make the
        # agent's threads interleave the way a loaded machine does.
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=harness._die_with_parent)
                    for _ in range(os.cpu_count() or 2)]
        try:
            for _ in range(20):
                self.upload_refused(head + body)
        finally:
            for p in spinners:
                p.kill()
                p.wait()

    def upload_refused(self, request):
        with self.agent.ssl_context().wrap_socket(
                socket.create_connection(("127.0.0.1", self.agent.port), timeout=10),
                server_hostname="127.0.0.1") as s:
            s.sendall(request)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 413 "), answer[:80])
        self.assertIn(b'"BODY_TOO_LARGE"', answer)

    def test_oversized_headers(self):
        status, _, _ = self.agent.request("GET", "/api/v1/status", {"X-Big": "a" * 40000})
        self.assertEqual(status, 431)
        self.assertTrue(self.agent.alive())

    def raw(self, request, timeout=5):
        """Sends `request` bytes as they are over TLS; (status, headers, body)
        of the answer, which must come within `timeout` seconds."""
        with self.agent.ssl_context().wrap_socket(
                socket.create_connection(("127.0.0.1", self.agent.port), timeout=timeout),
                server_hostname="127.0.0.1") as s:
            s.sendall(request)
            r = http.client.HTTPResponse(s)
            r.begin()
            return r.status, r.headers, r.read()

    def head(self, method="GET", path="/api/v1/status", lines=(), eol=b"\r\n"):
        host = b"Host: 127.0.0.1:%d" % self.agent.port
        return eol.join([b"%s %s HTTP/1.1" % (method.encode(), path.encode()), host] + list(lines)) + eol + eol

    def test_nul_in_any_header_refused(self):
        # Review 1.10 / 1.23 (W9): a NUL cut the value, so "127.0.0.1:PORT\0.attacker.example"
        # passed the Host check and "https://portal.gov.example\0.evil" got CORS headers.
        p = self.agent.port
        cases = [
            [b"Host: 127.0.0.1:%d\0.attacker.example" % p],                    # replaces the good Host below
            [b"Origin: " + OK.encode() + b"\0.evil.example"],
            [b"Origin: " + OK.encode() + b"\0.evil.example", b"Accept: */*"],  # not the last line
            [b"Sec-Fetch-Site: same-origin\0cross-site"],
            [b"X-Anything: a\0b", b"Accept: */*"],
            [b"X-Anything: a\0", b"Accept: */*"],
            [b"X-Anything: a\0b"],
        ]
        for lines in cases:
            request = self.head(lines=lines)
            if lines[0].startswith(b"Host:"):
                request = b"GET /api/v1/status HTTP/1.1\r\n" + lines[0] + b"\r\n\r\n"
            status, headers, body = self.raw(request)
            self.assertEqual((status, self.error_code(body)), (400, "INVALID_REQUEST"), lines)
            self.assertEqual(acao_headers(headers), [], lines)
        for eol in (b"\r\n", b"\n"):
            status, _, body = self.raw(self.head(lines=[b"Content-Type: application/json\0x", b"Accept: */*"], eol=eol))
            self.assertEqual(status, 400, eol)
        # No false alarm: bare LF line ends, empty values, the same headers without NUL.
        for eol in (b"\r\n", b"\n"):
            status, headers, _ = self.raw(self.head(lines=[b"Origin: " + OK.encode(), b"X-Empty:", b"X-Blank: ",
                                                           b"Accept: */*"], eol=eol))
            self.assertEqual(status, 200, eol)
            self.assertEqual(headers["Access-Control-Allow-Origin"], OK)

    def test_body_framing_conflicts_refused(self):
        # Review 6.3 (W9): two Content-Length headers (equal or not), or one with
        # Transfer-Encoding, frame one body two ways: refused before the body.
        json_ct = b"Content-Type: application/json"
        for lines, body in (([json_ct, b"Content-Length: 2", b"Content-Length: 2"], b"{}"),
                            ([json_ct, b"Content-Length: 61", b"Content-Length: 2"], b"{}"),
                            ([json_ct, b"Content-Length: 5", b"Transfer-Encoding: chunked"], b"0\r\n\r\n"),
                            ([json_ct, b"Transfer-Encoding: chunked", b"Content-Length: 5"], b"0\r\n\r\n")):
            status, _, answer = self.raw(self.head("POST", "/api/v1/login", lines) + body)
            self.assertEqual((status, self.error_code(answer)), (400, "INVALID_REQUEST"), lines)

    def test_chunked_body_over_the_cap_answered(self):
        # Review 6.5 (W9): a chunked body over max_body_bytes (64 KiB) was dropped with no answer.
        lines = [b"Content-Type: application/json", b"Transfer-Encoding: chunked"]
        chunks = b"".join(b"1000\r\n" + b"x" * 4096 + b"\r\n" for _ in range(18)) + b"0\r\n\r\n"
        status, _, body = self.raw(self.head("POST", "/api/v1/login", lines) + chunks)
        self.assertEqual((status, self.error_code(body)), (413, "BODY_TOO_LARGE"))
        # A small chunked body is read as usual (here: no challenge in it).
        status, _, body = self.raw(self.head("POST", "/api/v1/login", lines) + b"2\r\n{}\r\n0\r\n\r\n")
        self.assertEqual(status, 400)
        self.assertNotEqual(self.error_code(body), "BODY_TOO_LARGE")
        # One that goes on for more than 1 MiB past the cap is cut off.
        with self.agent.ssl_context().wrap_socket(
                socket.create_connection(("127.0.0.1", self.agent.port), timeout=10),
                server_hostname="127.0.0.1") as s:
            s.sendall(self.head("POST", "/api/v1/login", lines))
            with self.assertRaises(OSError):
                for _ in range(1000):  # 16 MiB at most
                    s.sendall(b"4000\r\n" + b"x" * 16384 + b"\r\n")
                s.sendall(b"0\r\n\r\n")
                if not s.recv(1):
                    raise ConnectionResetError("closed")
        self.assertEqual(self.agent.request("GET", "/api/v1/status")[0], 200)

    def test_many_query_arguments_answered(self):
        # Review 6.8 (W9): 500 query arguments filled libmicrohttpd's memory pool and
        # the connection hung for 60 s with no answer.
        for n in (33, 500, 3000):
            query = "&".join("a%d=1" % i for i in range(n))
            status, _, body = self.raw(self.head(path="/api/v1/status?" + query))
            self.assertEqual((status, self.error_code(body)), (400, "INVALID_REQUEST"), n)
        self.assertEqual(self.raw(self.head(path="/api/v1/status?" + "&".join("a%d" % i for i in range(32))))[0], 200)
        # The guard still comes first: a foreign Host hears 421.
        status, _, _ = self.raw(b"GET /api/v1/status?%s HTTP/1.1\r\nHost: evil.example\r\n\r\n"
                                % b"&".join(b"a" for _ in range(500)))
        self.assertEqual(status, 421)

    def test_unknown_path_and_method(self):
        status, headers, body = self.agent.request("GET", "/api/v1/nope")
        self.assertEqual((status, self.error_code(body)), (404, "NOT_FOUND"))
        self.assertTrue(headers["Content-Type"].startswith("application/json"))
        status, headers, body = self.agent.request("POST", "/api/v1/status",
                                                   {"Content-Type": "application/json"}, body="{}")
        self.assertEqual((status, self.error_code(body)), (405, "METHOD_NOT_ALLOWED"))
        self.assertIn("GET", headers["Allow"])
        for path in ("/sw.js", "/redirect?url=https://x%0d%0aSet-Cookie:%20a=b", "/?callback=alert(1)//"):
            status, headers, body = self.agent.request("GET", path)
            self.assertNotIn("Set-Cookie", headers)
            self.assertNotIn(b"alert", body)

    def test_common_headers(self):
        for path in ("/api/v1/status", "/api/v1/nope", "/", "/app.js"):
            status, headers, _ = self.agent.request("GET", path)
            self.assertEqual(headers["X-Content-Type-Options"], "nosniff", path)
            self.assertEqual(headers["Cache-Control"], "no-store", path)
            self.assertIsNone(headers.get("Server"), path)
            self.assertIsNone(headers.get("X-Powered-By"), path)
        status, headers, body = self.agent.request("GET", "/")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn("default-src 'none'", headers["Content-Security-Policy"])
        self.assertIn("frame-ancestors 'none'", headers["Content-Security-Policy"])
        self.assertNotIn("unsafe-inline", headers["Content-Security-Policy"])
        self.assertIn(b"/app.js", body)
        # Review 2.13 (W10): the opener of the consent popup keeps no handle to it.
        for page in ("/", "/consent.html"):
            self.assertEqual(self.agent.request("GET", page)[1]["Cross-Origin-Opener-Policy"], "same-origin", page)
        status, headers, _ = self.agent.request("GET", "/sdk/ukey-agent.js", {"Sec-Fetch-Site": "cross-site"})
        self.assertEqual((status, headers["Cross-Origin-Resource-Policy"]), (200, "cross-origin"))
        status, headers, _ = self.agent.request("GET", "/app.js")
        self.assertTrue(headers["Content-Type"].startswith("text/javascript"))
        status, headers, _ = self.agent.request("GET", "/api/v1/status")
        self.assertIn("sandbox", headers["Content-Security-Policy"])

    def test_status_body(self):
        status, _, body = self.agent.get_json("/api/v1/status")
        self.assertEqual(status, 200)
        self.assertEqual(body["name"], "ukey-agent")
        self.assertEqual(body["api"], "v1")
        self.assertIsInstance(body["pcsc"]["available"], bool)
        self.assertIsInstance(body["readers"], int)
        if not body["pcsc"]["available"]:
            self.assertTrue(body["pcsc"]["error"].startswith("SCARD_"))

    def test_loopback_only(self):
        """Nothing listens on a non-loopback address (invariant 1)."""
        port_hex = ":%04X" % self.agent.port
        found = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            if not os.path.exists(table):
                continue
            with open(table) as f:
                for line in f.readlines()[1:]:
                    local, state = line.split()[1], line.split()[3]
                    if local.endswith(port_hex) and state == "0A":  # LISTEN
                        found.append(local.split(":")[0])
        self.assertIn("0100007F", found)
        self.assertTrue(set(found) <= {"0100007F", "00000000000000000000000001000000"}, found)


class Traversal(unittest.TestCase):
    """With --webroot, no request reaches a file outside the root."""

    def test_no_file_outside_webroot(self):
        agent = harness.Agent()
        try:
            root = os.path.join(agent.tmp, "www")
            os.makedirs(os.path.join(root, "sub"))
            with open(os.path.join(root, "index.html"), "w") as f:
                f.write("<p>inside</p>")
            with open(os.path.join(agent.tmp, "secret.txt"), "w") as f:
                f.write("TOP-SECRET-OUTSIDE")
            os.symlink(os.path.join(agent.tmp, "secret.txt"), os.path.join(root, "link.txt"))
            agent.args += ["--webroot", root]
            agent.start()
            paths = ["/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "/sub/../../secret.txt",
                     "/sub/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt", "/....//secret.txt",
                     "/%252e%252e/secret.txt", "/link.txt", "/.%2e/secret.txt", "/sub/..%5c..%5csecret.txt",
                     "/" + "%2e%2e/" * 8 + "etc/passwd", "//etc/passwd", "/%00/../secret.txt"]
            for path in paths:
                status, _, body = agent.request("GET", path)
                self.assertNotIn(b"TOP-SECRET", body, path)
                self.assertNotIn(b"root:", body, path)
                self.assertIn(status, (400, 404), path)
            status, _, body = agent.request("GET", "/")
            self.assertEqual((status, body), (200, b"<p>inside</p>"))
            self.assertTrue(agent.alive())
        finally:
            agent.cleanup()


class Startup(unittest.TestCase):
    def test_bad_config_names_file_line_key(self):
        agent = harness.Agent(config='{\n  "port": 27443,\n  "allow_origin": []\n}\n')
        r = subprocess.run(agent.command(), env=agent.env, capture_output=True, text=True, timeout=30)
        agent.cleanup()
        self.assertEqual(r.returncode, 2)
        self.assertIn("agent.json:3:", r.stderr)
        self.assertIn('"allow_origin"', r.stderr)

    def test_bad_origin_flag(self):
        agent = harness.Agent(args=["--allow-origin", "https://portal.gov.example/path"])
        r = subprocess.run(agent.command(), env=agent.env, capture_output=True, text=True, timeout=30)
        agent.cleanup()
        self.assertEqual(r.returncode, 2)
        self.assertIn("--allow-origin", r.stderr)

    def test_port_in_use_fails_without_fallback(self):
        squat = socket.socket()
        squat.bind(("127.0.0.1", 0))
        squat.listen()
        port = squat.getsockname()[1]
        agent = harness.Agent()
        try:
            cmd = agent.command()
            cmd[cmd.index("--port") + 1] = str(port)
            r = subprocess.run(cmd, env=agent.env, capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("PORT_IN_USE", r.stderr)
        finally:
            squat.close()
            agent.cleanup()

    def test_sigterm_and_sigint_stop_cleanly(self):
        import signal
        for sig in (signal.SIGTERM, signal.SIGINT):
            agent = harness.Agent().start()
            try:
                agent.proc.send_signal(sig)
                self.assertEqual(agent.proc.wait(15), 0)
            finally:
                agent.cleanup()

    def test_version(self):
        r = subprocess.run([harness.AGENT, "--version"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^ukey-agent \d+\.\d+\.\d+")
        r = subprocess.run([harness.AGENT, "frobnicate"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command", r.stderr)


if __name__ == "__main__":
    harness.main()
