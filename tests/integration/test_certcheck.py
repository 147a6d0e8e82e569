"""Certificate checks (issue 5): POST /api/v1/certificates/check against a
two-level test PKI published on loopback, with the real `openssl ocsp`
responder, and CRL servers that answer 404, stall, send garbage, a
truncated or stale CRL, another issuer's CRL, or 100 MB. Runs in network
and mount namespaces of its own (see pki.OcspResponder)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
import pki as testpki  # noqa: E402

JSON = {"Content-Type": "application/json"}


class CertificateCheck(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ukey-certcheck-")
        cls.server = testpki.PkiServer(cls.dir)
        cls.ocsp_port = testpki.free_port()
        cls.pki = testpki.Pki(cls.dir, cls.server.url, "http://127.0.0.1:%d" % cls.ocsp_port)
        cls.responder = testpki.OcspResponder(cls.pki, cls.ocsp_port)
        cls.agent = harness.Agent(args=["--ca-file", cls.pki.p("root.pem")],
                                  config={"limits": {"fetch_timeout_s": 2}}).start()

    @classmethod
    def tearDownClass(cls):
        cls.agent.cleanup()
        cls.responder.stop()
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.server.modes.clear()
        self.clear_cache()

    def clear_cache(self):
        shutil.rmtree(os.path.join(self.agent.state_dir, "cache"), ignore_errors=True)

    def check(self, certificate, agent=None, status=200, **extra):
        body = dict(extra, certificate=certificate)
        st, _, raw = (agent or self.agent).request("POST", "/api/v1/certificates/check?lang=en", JSON,
                                                   json.dumps(body))
        self.assertEqual(st, status, raw)
        report = json.loads(raw)
        if status != 200:
            return report
        checks = {c["id"]: c for c in report["checks"]}
        self.assertEqual(set(checks), {"cert.validity", "cert.chain", "cert.crl.published", "cert.revoked",
                                       "system.clock"})
        return checks

    @staticmethod
    def evidence(checks):
        return checks["cert.revoked"]["evidence"][0]

    def test_each_certificate(self):
        expect = {  # validity, chain, crl.published, revoked, OCSP status
            "valid": ("pass", "pass", "pass", "pass", "good"),
            "expired": ("fail", "pass", "pass", "pass", "good"),
            "future": ("fail", "pass", "pass", "pass", "good"),
            "soon": ("warn", "pass", "pass", "pass", "good"),
            "revoked": ("pass", "pass", "pass", "fail", "revoked"),
            "ocsp_revoked": ("pass", "pass", "pass", "fail", "revoked"),  # after the CRL: only OCSP knows
            "unknown": ("pass", "pass", "pass", "warn", "unknown"),
        }
        for name, want in expect.items():
            checks = self.check(self.pki.pem(name))
            got = tuple(checks[c]["status"] for c in ("cert.validity", "cert.chain", "cert.crl.published",
                                                      "cert.revoked")) + (self.evidence(checks)["ocsp"]["status"],)
            self.assertEqual(got, want, (name, checks))
            ev = self.evidence(checks)
            self.assertEqual(ev["chain"]["fetched_intermediates"], 1)  # from AIA caIssuers
            self.assertEqual(ev["ocsp"]["responder"], "delegated")
            self.assertEqual(ev["ocsp"]["nonce"], "matched")
            self.assertEqual(checks["system.clock"]["status"], "pass")
        revoked = self.evidence(self.check(self.pki.pem("revoked")))
        self.assertEqual(revoked["crl"]["verdict"], "revoked")
        self.assertIn("revoked_at", revoked["crl"])
        self.assertIn("renew", self.check(self.pki.pem("expired"))["cert.validity"]["fix"])
        self.assertIn("new certificate", self.check(self.pki.pem("revoked"))["cert.revoked"]["fix"])

    def test_chain(self):
        # The intermediate given by the caller: nothing fetched.
        checks = self.check(self.pki.pem("valid"), intermediates=[self.pki.pem("inter")])
        self.assertEqual(checks["cert.chain"]["status"], "pass")
        self.assertNotIn("fetched_intermediates", self.evidence(checks)["chain"])
        # caIssuers missing: the chain cannot be built.
        self.server.modes["/inter.der"] = 404
        checks = self.check(self.pki.pem("valid"))
        self.assertEqual(checks["cert.chain"]["status"], "fail")
        self.assertIn("HTTP 404", self.evidence(checks)["chain"]["note"])
        # The revocation checks need the issuer too: not judged, never passed.
        self.assertEqual(checks["cert.revoked"]["status"], "skip")
        # Anchors from a directory (the shipped certs/ layout), with a README beside them.
        d = tempfile.mkdtemp(dir=self.dir)
        shutil.copy(self.pki.p("root.pem"), d)
        with open(os.path.join(d, "README.md"), "w") as f:
            f.write("not a certificate\n")
        with harness.Agent(args=["--ca-dir", d]) as other:
            self.server.modes.clear()
            self.assertEqual(self.check(self.pki.pem("valid"), agent=other)["cert.chain"]["status"], "pass")
        # No anchors at all: skipped, saying why.
        with harness.Agent(args=["--ca-dir", tempfile.mkdtemp(dir=self.dir)]) as none:
            checks = self.check(self.pki.pem("valid"), agent=none)
            self.assertEqual(checks["cert.chain"]["status"], "skip")
            self.assertIn("--ca-file", checks["cert.chain"]["detail"])

    def test_bad_crl_answers(self):
        other = tempfile.mkdtemp(dir=self.dir)
        pcsc.make_pki(other)
        shutil.copy(pcsc.make_crl(other), self.pki.p("other.crl.pem"))
        stale = "stale.crl"
        self.pki.crl(stale, faketime="-10d")  # valid for 7 days: 3 days past its nextUpdate
        cases = {
            404: "no CRL is published there yet",
            "garbage": "not a CRL",
            "truncate": "not a CRL",
            "stall": "did not answer",
            "huge": "larger than",
            "other-issuer": "another issuer",
            "stale": "stale",
        }
        with open(self.pki.p("inter.crl"), "rb") as f:
            published = f.read()
        for mode, note in cases.items():
            self.clear_cache()
            self.server.modes.clear()
            if mode == "other-issuer":
                shutil.copy(self.pki.p("other.crl.pem"), self.pki.p("inter.crl"))
            elif mode == "stale":
                shutil.copy(self.pki.p(stale), self.pki.p("inter.crl"))
            else:
                self.server.modes["/inter.crl"] = mode
            try:
                started = time.monotonic()
                checks = self.check(self.pki.pem("valid"))
                elapsed = time.monotonic() - started
            finally:
                with open(self.pki.p("inter.crl"), "wb") as f:
                    f.write(published)
            ev = self.evidence(checks)
            self.assertEqual(checks["cert.crl.published"]["status"], "warn", (mode, ev))
            self.assertIn(note, ev["crl"]["note"], mode)
            # OCSP still answers: the certificate's status is known all the same.
            self.assertEqual(checks["cert.revoked"]["status"], "pass", (mode, ev))
            self.assertLess(elapsed, 30, mode)  # bounded: 2 s fetch timeout in this agent's config
            if mode == 404:
                self.assertIn("not published yet", checks["cert.crl.published"]["detail"])
                self.assertIn("48 hours", checks["cert.crl.published"]["fix"])

    def test_ocsp_responders(self):
        # Signed by the issuer itself.
        self.responder.stop()
        issuer_signed = None
        try:
            issuer_signed = testpki.OcspResponder(self.pki, self.ocsp_port, delegated=False)
            ev = self.evidence(self.check(self.pki.pem("valid")))
            self.assertEqual((ev["ocsp"]["status"], ev["ocsp"]["responder"]), ("good", "issuer"))
            issuer_signed.stop()
            self.clear_cache()
            # Signed by a certificate the issuer did not authorise for OCSP.
            issuer_signed = testpki.OcspResponder(self.pki, self.ocsp_port, signer="valid")
            checks = self.check(self.pki.pem("valid"))
            ev = self.evidence(checks)
            self.assertEqual(ev["ocsp"]["verdict"], "warn")
            self.assertIn("neither by the issuer nor", ev["ocsp"]["note"])
            self.assertEqual(checks["cert.revoked"]["status"], "pass")  # from the CRL alone
            issuer_signed.stop()
            self.clear_cache()
            # No responder at all.
            checks = self.check(self.pki.pem("valid"))
            self.assertEqual(self.evidence(checks)["ocsp"]["verdict"], "warn")
            self.assertEqual(checks["cert.revoked"]["status"], "pass")
        finally:
            if issuer_signed:
                issuer_signed.stop()
            type(self).responder = testpki.OcspResponder(self.pki, self.ocsp_port)

    def test_proxy_never_for_loopback(self):
        # A proxy in the environment that answers nothing: loopback servers
        # are still reached directly (libcurl's NO_PROXY, set by the agent).
        dead = testpki.free_port()
        with harness.Agent(args=["--ca-file", self.pki.p("root.pem")],
                           env={"http_proxy": "http://127.0.0.1:%d" % dead, "HTTP_PROXY": "http://127.0.0.1:%d" % dead,
                                "no_proxy": "example.invalid"}) as agent:
            checks = self.check(self.pki.pem("valid"), agent=agent)
            ev = self.evidence(checks)
            self.assertEqual((ev["crl"]["verdict"], ev["ocsp"]["verdict"]), ("pass", "pass"), ev)

    def test_libcurl_loaded_at_the_first_fetch(self):
        # Serving loads none of libcurl's tree; the first fetch loads it.
        def libcurl(agent):
            with open("/proc/%d/maps" % agent.proc.pid) as f:
                return sorted({line.split()[-1] for line in f if "/libcurl.so" in line})
        with harness.Agent(args=["--ca-file", self.pki.p("root.pem")]) as agent:
            self.assertEqual(agent.get_json("/api/v1/status")[0], 200)
            self.assertEqual(libcurl(agent), [])
            self.assertEqual(self.check(self.pki.pem("valid"), agent=agent)["cert.revoked"]["status"], "pass")
            loaded = libcurl(agent)
        self.assertEqual(len(loaded), 1, loaded)
        # Without libcurl (hidden by an empty file in this test's mount
        # namespace): every fetch says what is missing; the agent serves on.
        empty = os.path.join(self.dir, "empty.so")
        open(empty, "w").close()
        subprocess.run(["mount", "--bind", empty, loaded[0]], check=True)
        try:
            with harness.Agent(args=["--ca-file", self.pki.p("root.pem")]) as agent:
                checks = self.check(self.pki.pem("valid"), agent=agent)
                self.assertEqual(checks["cert.chain"]["status"], "fail")
                self.assertIn("libcurl4", self.evidence(checks)["chain"]["note"])
                self.assertEqual(agent.get_json("/api/v1/status")[0], 200)
        finally:
            subprocess.run(["umount", loaded[0]], check=True)

    def test_cache(self):
        first = self.evidence(self.check(self.pki.pem("valid")))
        self.assertNotIn("cached", first["crl"])
        self.assertNotIn("cached", first["ocsp"])
        self.responder.stop()
        self.server.modes["/inter.crl"] = 404
        try:
            checks = self.check(self.pki.pem("valid"))
            ev = self.evidence(checks)
            self.assertTrue(ev["crl"].get("cached"), ev)
            self.assertTrue(ev["ocsp"].get("cached"), ev)
            self.assertEqual(checks["cert.revoked"]["status"], "pass")
            files = os.listdir(os.path.join(self.agent.state_dir, "cache"))
            self.assertEqual(sorted(f.split("-")[0] for f in files), ["crl", "ocsp"])
        finally:
            type(self).responder = testpki.OcspResponder(self.pki, self.ocsp_port)

    def test_bad_requests(self):
        for body in ({}, {"certificate": 5}, {"certificate": "not base64!"}, {"certificate": "QUJD"},
                     {"certificate": "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"},
                     {"certificate": self.pki.pem("valid"), "intermediates": "x"},
                     {"certificate": self.pki.pem("valid"), "intermediates": ["QUJD"]}):
            st, _, raw = self.agent.request("POST", "/api/v1/certificates/check", JSON, json.dumps(body))
            self.assertEqual(st, 400, body)
            self.assertEqual(json.loads(raw)["error"]["code"], "CERTIFICATE_INVALID")
        # Base64 DER is accepted as well as PEM, and the description comes back.
        der = subprocess.run(["openssl", "x509", "-in", self.pki.p("valid.pem"), "-outform", "DER"],
                             capture_output=True, check=True).stdout
        import base64
        st, _, raw = self.agent.request("POST", "/api/v1/certificates/check?mask_names=1", JSON,
                                        json.dumps({"certificate": base64.b64encode(der).decode()}))
        report = json.loads(raw)
        self.assertEqual(st, 200)
        self.assertEqual(report["certificate"]["serial"], "1000")
        self.assertEqual(report["certificate"]["subject_cn"], "v*")  # masked on request
        self.assertNotIn("der", report["certificate"])
        self.assertTrue(report["names_masked"])
        # The evidence names the certificate with the same facts as its description.
        ev = self.evidence({c["id"]: c for c in report["checks"]})
        for k in ("subject", "subject_cn", "issuer", "serial", "not_before", "not_after"):
            self.assertEqual(ev[k], report["certificate"][k], k)

    def test_slow_checks_do_not_block(self):
        self.server.modes["/inter.crl"] = "stall"
        with harness.Agent(args=["--ca-file", self.pki.p("root.pem")],
                           config={"limits": {"fetch_timeout_s": 6}}) as agent:
            results = []

            def slow():
                try:
                    st, _, raw = agent.request("POST", "/api/v1/certificates/check", JSON,
                                               json.dumps({"certificate": self.pki.pem("valid")}), timeout=60)
                    results.append((st, json.loads(raw)))
                except OSError as e:
                    results.append((None, str(e)))
            threads = [threading.Thread(target=slow) for _ in range(10)]
            for t in threads:
                t.start()
            time.sleep(1)
            # While they all wait on the stalled CRL server, the agent answers at once.
            started = time.monotonic()
            status, _, _ = agent.get_json("/api/v1/status")
            self.assertEqual(status, 200)
            # Waiting behind the checks would take the stalled fetch's last 5 s.
            self.assertLess(time.monotonic() - started, 4.5)
            for t in threads:
                t.join(60)
            codes = sorted(st for st, _ in results)
            self.assertEqual(len(codes), 10)
            self.assertEqual(codes.count(200), 8, results)  # at most 8 at once
            busy = [r for st, r in results if st == 503]
            self.assertEqual(len(busy), 2)
            self.assertEqual(busy[0]["error"]["code"], "AGENT_BUSY")
            # Stopping while a check still waits: a clean, prompt exit.
            t = threading.Thread(target=slow)
            t.start()
            time.sleep(1)
            started = time.monotonic()
            self.assertEqual(agent.stop(), 0)
            self.assertLess(time.monotonic() - started, 12)
            t.join(20)


if __name__ == "__main__":
    harness.main()
