"""The agent's TLS identity and front, checked by independent clients
(curl, openssl, Python's ssl) that trust only the agent's own CA."""
import datetime
import glob
import re
import json
import os
import socket
import ssl
import stat
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent as harness  # noqa: E402
from agent import run_tool  # noqa: E402


class TlsIdentity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.agent = harness.Agent().start()

    @classmethod
    def tearDownClass(cls):
        cls.agent.cleanup()

    def text(self, name):
        return run_tool("openssl", "x509", "-noout", "-text", "-in",
                        os.path.join(self.agent.state_dir, name)).stdout

    def test_curl_accepts_chain_san_and_constraints(self):
        for host in ("127.0.0.1", "localhost"):
            out = run_tool("curl", "-sS", "--fail", "--cacert", self.agent.ca, "--max-time", "10",
                           "https://%s:%d/api/v1/status" % (host, self.agent.port)).stdout
            status = json.loads(out)
            self.assertEqual(status["name"], "ukey-agent")
            self.assertIn("pcsc", status)

    def test_ipv6_loopback_when_available(self):
        if "not listening on [::1]" in self.agent.log_text():
            if os.environ.get("CI"):
                self.fail("CI machines must have IPv6 loopback: the agent could not bind [::1]")
            self.skipTest("no IPv6 loopback on this machine")
        out = run_tool("curl", "-sS", "--fail", "--cacert", self.agent.ca, "--max-time", "10",
                       "https://[::1]:%d/api/v1/status" % self.agent.port).stdout
        self.assertEqual(json.loads(out)["name"], "ukey-agent")

    def test_ca_extensions(self):
        t = self.text("ca.crt")
        self.assertRegex(t, r"X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0")
        self.assertRegex(t, r"X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign")
        self.assertRegex(t, r"X509v3 Name Constraints: critical\s+Permitted:\s+DNS:localhost\s+"
                            r"IP:127\.0\.0\.1/255\.255\.255\.255\s+"
                            r"IP:0:0:0:0:0:0:0:1/FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF")
        self.assertIn("ecdsa-with-SHA256", t)
        self.assertIn("prime256v1", t)

    def test_signature_algorithm_encoding(self):
        # RFC 5758 3.2: ecdsa-with-SHA256 has no parameters. Chromium refuses
        # a certificate with a NULL there ("Unacceptable signature algorithm").
        for name in ("ca.crt", "server.crt"):
            parsed = run_tool("openssl", "asn1parse", "-in", os.path.join(self.agent.state_dir, name)).stdout
            self.assertNotIn("NULL", parsed, name)

    def test_legacy_identity_is_replaced(self):
        # Certificates an earlier version wrote with that NULL are replaced at start.
        legacy = os.path.join(os.environ.get("UKEY_SOURCE_DIR", "."), "tests", "data", "legacy-identity")
        import shutil
        import tempfile
        state = tempfile.mkdtemp(prefix="ukey-legacy-")
        self.addCleanup(shutil.rmtree, state, True)
        for name in ("ca.crt", "server.crt", "server.key"):
            with open(os.path.join(legacy, name)) as f, open(os.path.join(state, name), "w") as g:
                g.write(f.read())
        os.chmod(os.path.join(state, "server.key"), 0o600)
        with harness.Agent(state_dir=state) as again:
            self.assertIn("an encoding browsers refuse", again.log_text())
            parsed = run_tool("openssl", "asn1parse", "-in", os.path.join(state, "server.crt")).stdout
            self.assertNotIn("NULL", parsed)
            run_tool("curl", "-sS", "--fail", "--cacert", again.ca, "--max-time", "10",
                     "https://127.0.0.1:%d/api/v1/status" % again.port)

    def test_leaf_extensions_and_lifetime(self):
        t = self.text("server.crt")
        self.assertRegex(t, r"X509v3 Subject Alternative Name:\s+DNS:localhost, "
                            r"IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1")
        self.assertRegex(t, r"X509v3 Extended Key Usage: critical\s+TLS Web Server Authentication\n")
        self.assertIn("CA:FALSE", t)
        dates = run_tool("openssl", "x509", "-noout", "-startdate", "-enddate", "-in",
                         os.path.join(self.agent.state_dir, "server.crt")).stdout
        fmt = "%b %d %H:%M:%S %Y %Z"
        start = datetime.datetime.strptime(dates.split("notBefore=")[1].split("\n")[0].strip(), fmt)
        end = datetime.datetime.strptime(dates.split("notAfter=")[1].strip(), fmt)
        self.assertLessEqual((end - start).days, 825)
        verify = run_tool("openssl", "verify", "-CAfile", self.agent.ca, "-purpose", "sslserver",
                          os.path.join(self.agent.state_dir, "server.crt"))
        self.assertIn(": OK", verify.stdout)

    def test_no_ca_private_key_on_disk(self):
        """Only server.key holds a private key, and it is the leaf's."""
        keys = []
        for root, _, files in os.walk(self.agent.state_dir):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    if b"PRIVATE KEY" in f.read():
                        keys.append(name)
        self.assertEqual(keys, ["server.key"])
        key_pub = run_tool("openssl", "pkey", "-pubout", "-in",
                           os.path.join(self.agent.state_dir, "server.key")).stdout
        leaf_pub = run_tool("openssl", "x509", "-noout", "-pubkey", "-in",
                            os.path.join(self.agent.state_dir, "server.crt")).stdout
        ca_pub = run_tool("openssl", "x509", "-noout", "-pubkey", "-in", self.agent.ca).stdout
        self.assertEqual(key_pub, leaf_pub)
        self.assertNotEqual(key_pub, ca_pub)

    def test_key_file_mode(self):
        st = os.stat(os.path.join(self.agent.state_dir, "server.key"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.agent.state_dir).st_mode), 0o700)

    def test_sni_other_than_localhost_refused(self):
        ctx = ssl.create_default_context(cafile=self.agent.ca)
        ctx.check_hostname = False
        with socket.create_connection(("127.0.0.1", self.agent.port), timeout=10) as s:
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                with ctx.wrap_socket(s, server_hostname="attacker.example") as tls:
                    tls.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: attacker.example\r\n\r\n")
                    tls.recv(100)

    def test_weak_protocols_and_suites_refused(self):
        for args in (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
                     ["-tls1_2", "-cipher", "AES128-GCM-SHA256"],
                     ["-tls1_1"]):
            r = run_tool("openssl", "s_client", "-connect", "127.0.0.1:%d" % self.agent.port,
                         "-CAfile", self.agent.ca, *args, check=False, input="")
            self.assertTrue(r.returncode != 0 or "Cipher is (NONE)" in r.stdout, (args, r.stdout))
        ok = run_tool("openssl", "s_client", "-connect", "127.0.0.1:%d" % self.agent.port,
                      "-CAfile", self.agent.ca, "-tls1_2", "-alpn", "http/1.1",
                      check=False, input="")
        self.assertIn("Verify return code: 0 (ok)", ok.stdout)
        self.assertRegex(ok.stdout, r"Cipher is ECDHE-ECDSA-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)")
        self.assertIn("ALPN protocol: http/1.1", ok.stdout)

    def s_client(self, *args):
        return run_tool("openssl", "s_client", "-connect", "127.0.0.1:%d" % self.agent.port,
                        "-CAfile", self.agent.ca, "-tls1_2", *args, check=False, input="")

    def test_server_chooses_the_ecdhe_group(self):
        # The server's order (X25519, P-256), not the client's first offer
        # nor mbedTLS 2.28's default (largest curve first): secp521r1 costs
        # about ten times as much. Every offer names P-256, the curve of the
        # agent's ECDSA key: a TLS 1.2 client without it cannot check the
        # signature (RFC 8422 5.1), so the handshake fails whatever the group.
        for groups, chosen in (("secp521r1:X25519:prime256v1", r"X25519"),
                               ("secp521r1:secp384r1:prime256v1", r"ECDH, (prime256v1|P-256)"),
                               ("X25519:prime256v1", r"X25519")):
            out = self.s_client("-groups", groups).stdout
            self.assertIn("Verify return code: 0 (ok)", out, groups)
            self.assertRegex(out, r"Server Temp Key: " + chosen, groups)

    def test_session_resumption_with_a_ticket(self):
        sess = os.path.join(self.agent.tmp, "tls.sess")
        first = self.s_client("-sess_out", sess).stdout
        self.assertRegex(first, r"\bNew, TLSv1\.2")
        self.assertIn("TLS session ticket lifetime hint: 600 (seconds)", first)
        again = self.s_client("-sess_in", sess).stdout
        self.assertRegex(again, r"\bReused, TLSv1\.2", again)
        self.assertIn("Verify return code: 0 (ok)", again)
        # Resuming does not skip the SNI check.
        other = self.s_client("-sess_in", sess, "-servername", "attacker.example")
        self.assertTrue(other.returncode != 0 or "Cipher is (NONE)" in other.stdout, other.stdout)
        self.assertNotRegex(other.stdout, r"\bReused, ")

    def test_keep_alive(self):
        conn = self.agent.connect()
        try:
            for _ in range(3):
                status, headers, _ = self.agent.request("GET", "/api/v1/status", conn=conn)
                self.assertEqual(status, 200)
                self.assertNotEqual((headers.get("Connection") or "").lower(), "close")
        finally:
            conn.close()


class TlsLifecycle(unittest.TestCase):
    def test_second_start_reuses_identity(self):
        first = harness.Agent().start()
        try:
            fp = run_tool("openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", first.ca).stdout
            self.assertEqual(first.stop(), 0)
            second = harness.Agent(state_dir=first.state_dir).start()
            try:
                fp2 = run_tool("openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in",
                               second.ca).stdout
                self.assertEqual(fp, fp2)
                self.assertEqual(second.get_json("/api/v1/status")[0], 200)
            finally:
                second.cleanup()
        finally:
            first.cleanup()

    def test_tickets_die_with_the_process_and_expire(self):
        """Ticket keys live in memory only: after a restart the old ticket
        opens nothing and a full handshake follows. A ticket is good for 600 s
        from its full handshake: with the agent's clock running 100x
        (libfaketime), 7 s later it is refused."""
        def s_client(agent, *args):
            return run_tool("openssl", "s_client", "-connect", "127.0.0.1:%d" % agent.port, "-CAfile",
                            agent.ca, "-tls1_2", *args, check=False, input="").stdout
        first = harness.Agent().start()
        try:
            sess = os.path.join(first.tmp, "tls.sess")
            self.assertRegex(s_client(first, "-sess_out", sess), r"\bNew, TLSv1\.2")
            self.assertRegex(s_client(first, "-sess_in", sess), r"\bReused, TLSv1\.2")
            self.assertEqual(first.stop(), 0)
            second = harness.Agent(state_dir=first.state_dir).start()
            try:
                out = s_client(second, "-sess_in", sess)
                self.assertRegex(out, r"\bNew, TLSv1\.2")
                self.assertIn("Verify return code: 0 (ok)", out)
            finally:
                second.cleanup()
        finally:
            first.cleanup()
        fast = harness.Agent(env={
            "LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "+0 x100", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}).start()
        try:
            sess = os.path.join(fast.tmp, "tls.sess")
            self.assertRegex(s_client(fast, "-sess_out", sess), r"\bNew, TLSv1\.2")
            self.assertRegex(s_client(fast, "-sess_in", sess), r"\bReused, TLSv1\.2")
            time.sleep(7)
            self.assertRegex(s_client(fast, "-sess_in", sess), r"\bNew, TLSv1\.2")
        finally:
            fast.cleanup()

    def test_two_installs_differ(self):
        a, b = harness.Agent().start(), harness.Agent().start()
        try:
            fa = run_tool("openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", a.ca).stdout
            fb = run_tool("openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", b.ca).stdout
            self.assertNotEqual(fa, fb)
        finally:
            a.cleanup()
            b.cleanup()


FAKETIME_LIB = (glob.glob("/usr/lib/*/faketime/libfaketime.so.1") or ["libfaketime.so.1 (install faketime)"])[0]


class TlsRenewal(unittest.TestCase):
    """30 days before the leaf's end the agent makes a new CA + leaf at start
    and puts the new CA where the old one was trusted (faketime moves the
    clock 800 days ahead for the second start)."""

    def test_renewal_reinstalls_trust(self):
        first = harness.Agent().start()
        try:
            nssdb = os.path.join(first.tmp, ".pki", "nssdb")
            os.makedirs(nssdb)
            run_tool("certutil", "-N", "-d", "sql:" + nssdb, "--empty-password")
            run_tool(harness.AGENT, "trust", "install", "--no-system", "--state-dir", first.state_dir,
                     env=first.env)
            old_fp = run_tool("openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", first.ca).stdout
            self.assertEqual(first.stop(), 0)

            # libfaketime preloaded into the agent itself (not the faketime
            # wrapper, which would sit between the test and the agent); the
            # sanitizer build must let it go first.
            later = harness.Agent(state_dir=first.state_dir, env={
                "HOME": first.tmp, "LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "+800d",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"})
            later.start()
            try:
                new_fp = run_tool("openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", later.ca).stdout
                self.assertNotEqual(old_fp, new_fp)
                self.assertIn("expires within 30 days", later.log_text())
                listing = run_tool("certutil", "-L", "-d", "sql:" + nssdb).stdout
                names = re.findall(r"ukey-agent local CA [0-9a-f]{16}", listing)
                self.assertEqual(len(names), 1, listing)
                pem = run_tool("certutil", "-L", "-d", "sql:" + nssdb, "-a", "-n", names[0]).stdout
                in_db = run_tool("openssl", "x509", "-noout", "-fingerprint", "-sha256", input=pem).stdout
                self.assertEqual(in_db, new_fp)
            finally:
                later.cleanup()
        finally:
            first.cleanup()


if __name__ == "__main__":
    harness.main()
