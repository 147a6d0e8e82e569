"""国密 (issue 14, parts 1 and 2): SM2 certificates in the certificate
checks and SM2-SM3 login tokens in libukeyverify.

The SM2 PKI is made by sm2pki.py with the openssl CLI: root -> intermediate
-> user (a 3-level chain, every SM2 signature with the ID
1234567812345678), a revoked user on a CRL signed with SM2, an RSA chain
beside it. It is published on loopback with the intermediate's certificate
only reachable through AIA, and the real `openssl ocsp` answers for it,
signing with SM2. Negative cases are made the way real mistakes are made:
the ID left out (OpenSSL 3.0's empty default). Tokens are signed with the
openssl CLI, so ukey-verify is checked against an independent signer.
Runs in network and mount namespaces of its own (see pki.OcspResponder).
"""
import base64
import hashlib
import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
import pki as testpki  # noqa: E402
import sm2pki  # noqa: E402
from agent import run_tool  # noqa: E402
from pki import raw_from_der  # noqa: E402

JSON = {"Content-Type": "application/json"}
DISTID = "distid:1234567812345678"
ORIGIN = "https://portal.example.gov.cn"
CHALLENGE = base64.b64encode(bytes(range(100, 132))).decode()


def pem(path):
    with open(path) as f:
        return f.read()


class Sm2Pki(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ukey-sm2-")
        cls.server = testpki.PkiServer(cls.dir)
        port = testpki.free_port()
        cls.pki = sm2pki.make_sm2_pki(cls.dir, base_url=cls.server.url, ocsp_url="http://127.0.0.1:%d" % port)
        # `openssl ocsp` for the SM2 intermediate, signing with its SM2 key and the ID.
        cls.responder = testpki.OcspResponder(None, port, files=(cls.pki.index, cls.pki.inter, cls.pki.inter,
                                                                 cls.pki.inter_key), sigopts=(DISTID,))

    @classmethod
    def tearDownClass(cls):
        cls.responder.stop()
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def p(self, name):
        return os.path.join(self.dir, name)

    def issue_without_id(self, name):
        """An SM2 user certificate the intermediate signs with OpenSSL 3.0's
        empty default ID: what a CA tool that forgot the ID makes."""
        run_tool("openssl", "genpkey", "-algorithm", "SM2", "-out", self.p(name + ".key"))
        run_tool("openssl", "req", "-new", "-key", self.p(name + ".key"), "-out", self.p(name + ".csr"), "-subj",
                 "/CN=no-id", "-sm3", "-sigopt", DISTID)
        run_tool("openssl", "x509", "-req", "-in", self.p(name + ".csr"), "-CA", self.pki.inter, "-CAkey",
                 self.pki.inter_key, "-CAcreateserial", "-days", "30", "-sm3", "-vfyopt", DISTID,
                 "-out", self.p(name + ".pem"))
        return self.p(name + ".pem")


class Sm2CertificateCheck(Sm2Pki):
    """POST /api/v1/certificates/check and the listing's description."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent = harness.Agent(args=["--ca-file", cls.pki.anchors],
                                  config={"limits": {"fetch_timeout_s": 2}}).start()

    @classmethod
    def tearDownClass(cls):
        cls.agent.cleanup()
        super().tearDownClass()

    def setUp(self):
        self.server.modes.clear()
        shutil.rmtree(os.path.join(self.agent.state_dir, "cache"), ignore_errors=True)

    def check(self, certificate, **extra):
        st, _, raw = self.agent.request("POST", "/api/v1/certificates/check?lang=en", JSON,
                                        json.dumps(dict(extra, certificate=certificate)))
        self.assertEqual(st, 200, raw)
        report = json.loads(raw)
        return report, {c["id"]: c for c in report["checks"]}

    @staticmethod
    def verdicts(checks):
        return tuple(checks[c]["status"] for c in ("cert.validity", "cert.chain", "cert.crl.published",
                                                   "cert.revoked"))

    def test_sm2_user_certificate(self):
        report, checks = self.check(pem(self.pki.user))
        cert = report["certificate"]
        self.assertEqual((cert["key_type"], cert["key_size"], cert["signature_algorithm"]),
                         ("SM2", 256, "SM2-with-SM3"))
        self.assertEqual(cert["subject_cn"], "张三")
        self.assertIn("O=上海测试企业", cert["subject"])
        self.assertEqual(cert["key_usage"], ["digitalSignature", "nonRepudiation"])
        self.assertEqual(cert["ext_key_usage"], ["clientAuth"])
        self.assertEqual(self.verdicts(checks), ("pass", "pass", "pass", "pass"), json.dumps(checks, indent=1))
        ev = checks["cert.revoked"]["evidence"][0]
        # The intermediate came from AIA: the 3-level SM2 chain was built and verified.
        self.assertEqual(ev["chain"].get("fetched_intermediates"), 1)
        self.assertEqual(ev["crl"]["verdict"], "pass")
        self.assertEqual((ev["ocsp"]["status"], ev["ocsp"]["responder"]), ("good", "issuer"))

    def test_sm2_revoked_by_crl_and_ocsp(self):
        _, checks = self.check(pem(self.pki.revoked))
        self.assertEqual(self.verdicts(checks), ("pass", "pass", "pass", "fail"))
        ev = checks["cert.revoked"]["evidence"][0]
        self.assertEqual(ev["crl"]["verdict"], "revoked")
        self.assertEqual(ev["ocsp"]["status"], "revoked")

    def test_intermediate_given_no_fetch(self):
        self.server.modes["/sm2-inter.crt"] = 404
        _, checks = self.check(pem(self.pki.user), intermediates=[pem(self.pki.inter)])
        self.assertEqual(checks["cert.chain"]["status"], "pass")
        self.assertNotIn("fetched_intermediates", checks["cert.chain"]["evidence"][0]["chain"])

    def test_signed_without_the_id_does_not_chain(self):
        _, checks = self.check(pem(self.issue_without_id("noid")), intermediates=[pem(self.pki.inter)])
        self.assertEqual(checks["cert.chain"]["status"], "fail")

    def test_crl_signed_without_the_id_is_not_trusted(self):
        cnf = self.p("sm2-ca.cnf")
        crl = self.p("sm2-inter.crl")
        saved = crl + ".saved"
        shutil.copy(crl, saved)
        try:
            run_tool("openssl", "ca", "-batch", "-config", cnf, "-keyfile", self.pki.inter_key, "-cert",
                     self.pki.inter, "-md", "sm3", "-gencrl", "-out", self.p("noid.crl.pem"))
            run_tool("openssl", "crl", "-in", self.p("noid.crl.pem"), "-outform", "DER", "-out", crl)
            _, checks = self.check(pem(self.pki.revoked))
            ev = checks["cert.revoked"]["evidence"][0]
            self.assertEqual(checks["cert.crl.published"]["status"], "warn")
            self.assertIn("signature does not verify", ev["crl"]["note"])
            self.assertEqual(ev["ocsp"]["status"], "revoked")  # OCSP still says so
        finally:
            shutil.move(saved, crl)

    def test_rsa_chain_beside_sm2(self):
        report, checks = self.check(pem(self.pki.rsa_user))
        self.assertEqual(report["certificate"]["key_type"], "RSA")
        self.assertEqual(self.verdicts(checks), ("pass", "pass", "pass", "pass"))

    def test_damaged_sm2_certificates(self):
        der = base64.b64decode("".join(pem(self.pki.user).splitlines()[1:-1]))
        for cut in (10, len(der) // 2, len(der) - 1):
            st, _, raw = self.agent.request("POST", "/api/v1/certificates/check", JSON,
                                            json.dumps({"certificate": base64.b64encode(der[:cut]).decode()}))
            self.assertEqual(st, 400, raw)
            self.assertEqual(json.loads(raw)["error"]["code"], "CERTIFICATE_INVALID")
        flipped = bytearray(der)
        flipped[-10] ^= 0xff  # inside the signature: it parses, but does not chain
        _, checks = self.check(base64.b64encode(bytes(flipped)).decode(), intermediates=[pem(self.pki.inter)])
        self.assertEqual(checks["cert.chain"]["status"], "fail")


class Sm2Tokens(Sm2Pki):
    """SM2-SM3 web-eid:1.0 tokens signed by the openssl CLI, checked by
    ukey-verify (libukeyverify)."""

    def token(self, cert, key, origin=ORIGIN, challenge=CHALLENGE, algorithm="SM2-SM3", distid=True):
        m = hashlib.new("sm3", origin.encode()).digest() + hashlib.new("sm3", challenge.encode()).digest()
        with open(self.p("m.bin"), "wb") as f:
            f.write(m)
        opts = ["-pkeyopt", DISTID] if distid else []
        run_tool("openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-digest", "sm3", *opts,
                 "-in", self.p("m.bin"), "-out", self.p("sig.der"))
        with open(self.p("sig.der"), "rb") as f:
            der = f.read()
        cert_der = base64.b64decode("".join(pem(cert).splitlines()[1:-1]))
        return {"unverifiedCertificate": base64.b64encode(cert_der).decode(), "algorithm": algorithm,
                "signature": base64.b64encode(raw_from_der(der)).decode(), "format": "web-eid:1.0",
                "appVersion": "https://ukey-agent.invalid/releases/0.1.0"}

    def verify(self, token, origin=ORIGIN, extra=()):
        """ukey-verify with the issuing CAs as a portal configures them."""
        issuing = self.p("issuing.pem")
        if not os.path.exists(issuing):
            with open(issuing, "w") as f:
                f.write(pem(self.pki.chain) + pem(self.pki.rsa_chain))
        path = self.p("token.json")
        with open(path, "w") as f:
            json.dump(token, f)
        return run_tool(os.path.join(os.path.dirname(harness.AGENT), "ukey-verify"), "--token", path,
                        "--challenge", CHALLENGE, "--origin", origin, "--ca-file", issuing, *extra,
                        check=False)

    def test_valid_token(self):
        tok = self.token(self.pki.user, self.pki.user_key)
        r = self.verify(tok)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("CN=张三", r.stdout)
        # The same signature checks independently: openssl over M with the ID.
        run_tool("openssl", "x509", "-in", self.pki.user, "-noout", "-pubkey", "-out", self.p("pub.pem"))
        run_tool("openssl", "dgst", "-sm3", "-verify", self.p("pub.pem"), "-sigopt", DISTID, "-signature",
                 self.p("sig.der"), self.p("m.bin"))

    def test_wrong_origin_algorithm_id(self):
        tok = self.token(self.pki.user, self.pki.user_key)
        r = self.verify(tok, origin="https://evil.example.com")
        self.assertIn("SIGNATURE_INVALID", r.stderr)
        r = self.verify(dict(tok, algorithm="ES256"))
        self.assertIn("ALGORITHM_MISMATCH", r.stderr)
        # Signed with OpenSSL 3.0's empty default ID: not an SM2-SM3 token.
        r = self.verify(self.token(self.pki.user, self.pki.user_key, distid=False))
        self.assertIn("SIGNATURE_INVALID", r.stderr)
        # An RSA certificate cannot carry an SM2-SM3 token.
        rsa_der = base64.b64decode("".join(pem(self.pki.rsa_user).splitlines()[1:-1]))
        r = self.verify(dict(tok, unverifiedCertificate=base64.b64encode(rsa_der).decode()))
        self.assertIn("ALGORITHM_MISMATCH", r.stderr)
        # The encryption certificate has no digitalSignature.
        r = self.verify(self.token(self.pki.user_enc, self.pki.user_enc_key))
        self.assertIn("CERT_USAGE", r.stderr)
        # Not r||s of 64 bytes.
        r = self.verify(dict(tok, signature=base64.b64encode(b"\x01" * 63).decode()))
        self.assertIn("SIGNATURE_INVALID", r.stderr)

    def test_chain_needs_the_id(self):
        r = self.verify(self.token(self.issue_without_id("noid2"), self.p("noid2.key")))
        self.assertIn("CERT_UNTRUSTED", r.stderr)

    def test_revocation(self):
        ok = self.token(self.pki.user, self.pki.user_key)
        revoked = self.token(self.pki.revoked, self.pki.revoked_key)
        r = self.verify(ok, extra=("--crl", self.pki.crl))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.verify(revoked, extra=("--crl", self.pki.crl_der))
        self.assertIn("CERT_REVOKED", r.stderr)
        # --crl-check fetches the CRL the certificate names.
        r = self.verify(ok, extra=("--crl-check",))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.verify(revoked, extra=("--crl-check",))
        self.assertIn("CERT_REVOKED", r.stderr)
        # The RSA intermediate's CRL says nothing about the SM2 user.
        r = self.verify(revoked, extra=("--crl", self.pki.rsa_crl))
        self.assertIn("REVOCATION_UNKNOWN", r.stderr)
        # A CRL signed without the ID is not the issuer's word.
        run_tool("openssl", "ca", "-batch", "-config", self.p("sm2-ca.cnf"), "-keyfile", self.pki.inter_key,
                 "-cert", self.pki.inter, "-md", "sm3", "-gencrl", "-out", self.p("noid-crl.pem"))
        r = self.verify(revoked, extra=("--crl", self.p("noid-crl.pem")))
        self.assertIn("REVOCATION_UNKNOWN", r.stderr)


if __name__ == "__main__":
    harness.main()
