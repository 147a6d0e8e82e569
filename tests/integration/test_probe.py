"""The plain-HTTP probe (issue 6): GET /probe on 127.0.0.1 says the agent
runs, its version, HTTPS port and CA fingerprint — to allowed origins, after
the Host check — and nothing else is served there."""
import http.client
import json
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent as harness  # noqa: E402
from agent import run_tool  # noqa: E402

PORTAL = "https://portal.example.gov.cn"


class Probe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.agent = harness.Agent(args=["--allow-origin", PORTAL]).start()

    @classmethod
    def tearDownClass(cls):
        cls.agent.cleanup()

    def get(self, path="/probe", headers=None, method="GET", host=None, port=None):
        port = port or self.agent.probe_port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host or "127.0.0.1:%d" % port)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.endheaders()
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()

    def test_probe_answers(self):
        status, headers, body = self.get()
        self.assertEqual(status, 200)
        info = json.loads(body)
        fp = run_tool("openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", self.agent.ca).stdout
        self.assertEqual(info["ca_fingerprint_sha256"], fp.split("=")[1].strip().replace(":", "").lower())
        self.assertEqual((info["name"], info["https_port"]), ("ukey-agent", self.agent.port))
        self.assertEqual(set(info), {"name", "version", "https_port", "ca_fingerprint_sha256"})
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertIsNone(headers.get("Access-Control-Allow-Origin"))
        # localhost names the same place.
        self.assertEqual(self.get(host="localhost:%d" % self.agent.probe_port)[0], 200)

    def test_origins(self):
        status, headers, _ = self.get(headers={"Origin": PORTAL})
        self.assertEqual(status, 200)
        self.assertEqual(headers["Access-Control-Allow-Origin"], PORTAL)
        status, headers, body = self.get(headers={"Origin": "https://evil.example"})
        self.assertEqual(status, 403)
        self.assertIsNone(headers.get("Access-Control-Allow-Origin"))
        self.assertEqual(json.loads(body)["error"]["code"], "ORIGIN_NOT_ALLOWED")
        # The Local Network Access / PNA preflight of an allowed page.
        status, headers, _ = self.get(method="OPTIONS", headers={
            "Origin": PORTAL, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Private-Network": "true"})
        self.assertEqual(status, 204)
        self.assertEqual(headers["Access-Control-Allow-Private-Network"], "true")

    def test_nothing_else(self):
        self.assertEqual(self.get(host="evil.example")[0], 421)  # DNS rebinding
        self.assertEqual(self.get(host="127.0.0.1:%d" % self.agent.port)[0], 421)
        for path in ("/", "/api/v1/status", "/api/v1/tokens", "/probe/x", "/index.html"):
            self.assertEqual(self.get(path)[0], 404, path)
        self.assertEqual(self.get(method="POST")[0], 405)
        # Loopback IPv4 only.
        with self.assertRaises(OSError):
            socket.create_connection(("::1", self.agent.probe_port), timeout=2).close()

    def raw(self, request, timeout=5):
        with socket.create_connection(("127.0.0.1", self.agent.probe_port), timeout=timeout) as s:
            s.sendall(request)
            r = http.client.HTTPResponse(s)
            r.begin()
            return r.status, r.headers, r.read()

    def test_same_header_rules_as_the_main_port(self):
        # Review 5.9 (W7): the probe took the first of two Host or Origin headers.
        host = b"Host: 127.0.0.1:%d" % self.agent.probe_port
        for lines in ([host, b"Host: attacker.example"], [host, b"Origin: " + PORTAL.encode(), b"Origin: https://evil.example"],
                      [b"Host: 127.0.0.1:%d\0.attacker.example" % self.agent.probe_port],
                      [host, b"Origin: " + PORTAL.encode() + b"\0.evil.example"],
                      [host, b"Content-Length: 0", b"Content-Length: 0"]):
            status, headers, body = self.raw(b"\r\n".join([b"GET /probe HTTP/1.1"] + lines) + b"\r\n\r\n")
            self.assertEqual((status, json.loads(body)["error"]["code"]), (400, "INVALID_REQUEST"), lines)
            self.assertIsNone(headers.get("Access-Control-Allow-Origin"))
        status, _, _ = self.raw(b"GET /probe?%s HTTP/1.1\r\n%s\r\n\r\n" % (b"&".join(b"a" for _ in range(300)), host))
        self.assertEqual(status, 400)

    def test_slow_clients_do_not_lock_the_probe(self):
        # Review 5.11 (W7): 40 clients trickling header lines held every slot
        # (32 per IP, all 127.0.0.1) for as long as they kept trickling.
        stop = threading.Event()
        socks = []
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", self.agent.probe_port), timeout=5)
            s.sendall(b"GET /probe HTTP/1.1\r\n")
            socks.append(s)

        def trickle():
            while not stop.wait(1):
                for s in socks:
                    try:
                        s.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        pass
        t = threading.Thread(target=trickle)
        t.start()
        try:
            self.assertEqual(self.get()[0], 200)
            # Each is closed a few seconds after it was accepted, trickle or not.
            deadline = time.monotonic() + 15
            for s in socks:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                self.assertEqual(s.recv(1), b"")
            self.assertLess(time.monotonic(), deadline)
        finally:
            stop.set()
            t.join()
            for s in socks:
                s.close()
        self.assertEqual(self.get()[0], 200)

    def test_port_taken(self):
        # Another agent cannot have the probe's port: it says so and serves HTTPS all the same.
        with harness.Agent(args=["--probe-port", str(self.agent.probe_port)]) as other:
            self.assertEqual(other.get_json("/api/v1/status")[0], 200)
        self.assertIn("no probe: cannot listen on 127.0.0.1:%d" % self.agent.probe_port, other.log_text())


if __name__ == "__main__":
    harness.main()
