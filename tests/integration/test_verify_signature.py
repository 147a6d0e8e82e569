#!/usr/bin/env python3
"""ukey_verify_signature through `ukey-verify --signature` (issue 15): raw
signatures made by openssl with SM2, RSA, P-256 and P-384 keys; a flipped
bit, other data, an untrusted chain, an expired and a revoked certificate
are refused with the right result name.

    /usr/bin/python3 tests/integration/test_verify_signature.py [--agent build/ukey-agent]

(ukey-verify is taken from the agent's build directory.)
"""
import base64
import os
import subprocess
import sys
import tempfile
import unittest

VERIFY = "build/ukey-verify"


def ossl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class RawSignature(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.d = cls.tmp.name
        with open(os.path.join(d, "data"), "wb") as f:
            f.write(b"server random Zm9vYmFy\n")
        with open(os.path.join(d, "other"), "wb") as f:
            f.write(b"server random Zm9vYmFz\n")
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca=c\n[c]\ndir=.\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\n"
                    "crlnumber=crlnumber\ndefault_md=sha256\ndefault_crl_days=30\npolicy=p\n[p]\nCN=supplied\n")
        open(os.path.join(d, "index.txt"), "w").close()
        for name in ("serial", "crlnumber"):
            with open(os.path.join(d, name), "w") as f:
                f.write("01\n")
        for ca in ("ca", "other-ca"):
            ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                 ca + ".key", "-out", ca + ".pem", "-subj", "/CN=" + ca, "-days", "30", cwd=d)
        keys = {"sm2": ["-algorithm", "SM2"], "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                "p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                "p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]}
        for name, opts in list(keys.items()) + [("expired", keys["p256"]), ("revoked", keys["p256"])]:
            ossl("genpkey", *opts, "-out", name + ".key", cwd=d)
            ossl("req", "-new", "-key", name + ".key", "-subj", "/CN=holder " + name, "-out", name + ".csr", cwd=d)
            days = ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"] if name == "expired" \
                else ["-days", "10"]
            ossl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", name + ".csr",
                 "-out", name + ".pem", *days, cwd=d)
            ossl("x509", "-in", name + ".pem", "-outform", "DER", "-out", name + ".der", cwd=d)
            md = {"sm2": ["-sm3", "-sigopt", "distid:1234567812345678"], "p384": ["-sha384"]}.get(name, ["-sha256"])
            ossl("dgst", *md, "-sign", name + ".key", "-out", name + ".sig", "data", cwd=d)
        ossl("ca", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-revoke", "revoked.pem", cwd=d)
        ossl("ca", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-gencrl", "-out", "crl.pem", cwd=d)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_verify(self, name, sig=None, data="data", ca="ca.pem", cert=None, extra=()):
        p = subprocess.run([VERIFY, "--signature", sig or name + ".sig", "--cert", cert or name + ".der",
                            "--data", data, "--ca-file", ca, *extra], cwd=self.d, capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr

    def test_good_signatures(self):
        for name, alg in (("sm2", "SM2-SM3"), ("rsa", "RS256"), ("p256", "ES256"), ("p384", "ES384")):
            with self.subTest(name):
                rc, out = self.run_verify(name, extra=("--crl", "crl.pem"))
                self.assertEqual(rc, 0, out)
                self.assertIn("CN=holder " + name, out)
                self.assertIn(alg, out)

    def test_base64_certificate(self):
        with open(os.path.join(self.d, "sm2.der"), "rb") as f, open(os.path.join(self.d, "sm2.b64"), "w") as g:
            g.write(base64.b64encode(f.read()).decode())
        rc, out = self.run_verify("sm2", cert="sm2.b64")
        self.assertEqual(rc, 0, out)

    def test_flipped_bit_and_other_data(self):
        for name in ("sm2", "rsa", "p256", "p384"):
            with open(os.path.join(self.d, name + ".sig"), "rb") as f:
                sig = bytearray(f.read())
            sig[len(sig) // 2] ^= 0x01
            with open(os.path.join(self.d, name + ".bad"), "wb") as f:
                f.write(sig)
            with self.subTest(name):
                rc, out = self.run_verify(name, sig=name + ".bad")
                self.assertEqual(rc, 1, out)
                self.assertIn("SIGNATURE", out)
                rc, out = self.run_verify(name, data="other")
                self.assertEqual(rc, 1, out)
                self.assertIn("SIGNATURE", out)

    def test_untrusted_expired_revoked(self):
        rc, out = self.run_verify("p256", ca="other-ca.pem")
        self.assertEqual((rc, "CERT_UNTRUSTED" in out), (1, True), out)
        rc, out = self.run_verify("expired")
        self.assertEqual((rc, "CERT_NOT_VALID" in out or "EXPIRED" in out), (1, True), out)
        rc, out = self.run_verify("revoked", extra=("--crl", "crl.pem"))
        self.assertEqual((rc, "REVOKED" in out), (1, True), out)

    def test_usage_errors(self):
        p = subprocess.run([VERIFY, "--signature", "p256.sig", "--ca-file", "ca.pem"], cwd=self.d,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2, p.stderr)


if __name__ == "__main__":
    if "--agent" in sys.argv:
        i = sys.argv.index("--agent")
        VERIFY = os.path.join(os.path.dirname(os.path.abspath(sys.argv[i + 1])), "ukey-verify")
        del sys.argv[i:i + 2]
    else:
        VERIFY = os.path.abspath(VERIFY)
    unittest.main()
