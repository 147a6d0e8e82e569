#!/usr/bin/env python3
"""The legacy portal's back end (examples/legacy-portal, issue 15) without a
browser: its pages get a fresh random and the agent's URL, POST /login
checks an openssl-made SM3withSM2 / ECDSA signature over the random with
the certificate (登录成功 and the CN), the random is single use, a wrong
signature, another session's random, an untrusted certificate and a
malformed form are refused with 403/400.

    /usr/bin/python3 tests/integration/test_legacy_portal.py [--agent build/ukey-agent]
"""
import base64
import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

BUILD = "build"


def ossl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LegacyPortal(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.d = cls.tmp.name
        for ca in ("ca", "other-ca"):
            ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                 ca + ".key", "-out", ca + ".pem", "-subj", "/CN=" + ca, "-days", "3", cwd=d)
        for name, alg, ca in (("sm2", ["-algorithm", "SM2"], "ca"),
                              ("p256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "ca"),
                              ("stranger", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "other-ca")):
            ossl("genpkey", *alg, "-out", name + ".key", cwd=d)
            ossl("req", "-new", "-key", name + ".key", "-subj", "/CN=holder-" + name, "-out", name + ".csr", cwd=d)
            ossl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-days", "2",
                 "-out", name + ".pem", cwd=d)
            ossl("x509", "-in", name + ".pem", "-outform", "DER", "-out", name + ".der", cwd=d)
        cls.port = free_port()
        cls.proc = subprocess.Popen([os.path.join(BUILD, "ukey-legacy-portal"), "--ca-file", os.path.join(d, "ca.pem"),
                                     "--port", str(cls.port), "--agent", "https://127.0.0.1:1"],
                                    stderr=subprocess.PIPE, text=True)
        cls.proc.stderr.readline()
        cls.base = "http://127.0.0.1:%d" % cls.port

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(10)
        cls.proc.stderr.close()
        cls.tmp.cleanup()

    def browser(self):
        return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def page(self, b, name="sof.html"):
        with b.open(self.base + "/" + name) as r:
            text = r.read().decode()
        self.assertNotIn("{{", text)
        self.assertIn("https://127.0.0.1:1", text)
        return re.search(r"[A-Za-z0-9+/]{43}=", text).group(0)

    def sign(self, name, data):
        with open(os.path.join(self.d, "data"), "w") as f:
            f.write(data)
        md = ["-sm3", "-sigopt", "distid:1234567812345678"] if name == "sm2" else ["-sha256"]
        ossl("dgst", *md, "-sign", name + ".key", "-out", "sig", "data", cwd=self.d)
        with open(os.path.join(self.d, "sig"), "rb") as f:
            return base64.b64encode(f.read()).decode()

    def cert(self, name):
        with open(os.path.join(self.d, name + ".der"), "rb") as f:
            return base64.b64encode(f.read()).decode()

    def post(self, b, fields, ctype="application/x-www-form-urlencoded"):
        req = urllib.request.Request(self.base + "/login", data=urllib.parse.urlencode(fields).encode(),
                                     headers={"Content-Type": ctype})
        try:
            with b.open(req) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def test_login_sm2_and_ecdsa_single_use(self):
        for name in ("sm2", "p256"):
            with self.subTest(name):
                b = self.browser()
                random = self.page(b, "safeengine.html" if name == "sm2" else "sof.html")
                fields = {"UserCert": self.cert(name), "UserSignedData": self.sign(name, random)}
                status, text = self.post(b, fields)
                self.assertEqual(status, 200, text)
                self.assertIn("登录成功", text)
                self.assertIn("holder-" + name, text)
                status, text = self.post(b, fields)
                self.assertEqual(status, 403, text)
                self.assertIn("NO_CHALLENGE", text)

    def test_refusals(self):
        b = self.browser()
        random = self.page(b)
        status, text = self.post(b, {"UserCert": self.cert("p256"), "UserSignedData": self.sign("p256", random + "x")})
        self.assertEqual((status, "SIGNATURE_INVALID" in text), (403, True), text)
        other = self.browser()
        self.page(other)
        random = self.page(b)
        status, text = self.post(other, {"UserCert": self.cert("p256"), "UserSignedData": self.sign("p256", random)})
        self.assertEqual((status, "SIGNATURE_INVALID" in text), (403, True), text)
        random = self.page(b)
        status, text = self.post(b, {"UserCert": self.cert("stranger"),
                                     "UserSignedData": self.sign("stranger", random)})
        self.assertEqual((status, "CERT_UNTRUSTED" in text), (403, True), text)
        self.assertEqual(self.post(b, {"UserCert": self.cert("p256")})[0], 400)
        self.assertEqual(self.post(b, {"UserCert": "x", "UserSignedData": "!!"})[0], 400)
        self.assertEqual(self.post(b, {"UserCert": "x"}, "text/plain")[0], 415)

    def test_index_and_sdk(self):
        b = self.browser()
        with b.open(self.base + "/") as r:
            text = r.read().decode()
        self.assertIn("safeengine.html", text)
        self.assertIn("sof.html", text)
        for path in ("/sdk/legacy/safeengine.js", "/sdk/legacy/sof.js", "/sdk/ukey-agent.js"):
            with b.open(self.base + path) as r:
                self.assertEqual(r.status, 200, path)
        with self.assertRaises(urllib.error.HTTPError):
            b.open(self.base + "/sdk/../../etc/passwd.js")


if __name__ == "__main__":
    if "--agent" in sys.argv:
        i = sys.argv.index("--agent")
        BUILD = os.path.dirname(os.path.abspath(sys.argv[i + 1]))
        del sys.argv[i:i + 2]
    else:
        BUILD = os.path.abspath(BUILD)
    unittest.main()
