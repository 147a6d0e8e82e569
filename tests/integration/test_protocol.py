"""docs/PROTOCOL.md's test vectors are true: the signed bytes are
hash(origin) || hash(challenge), the RS256 signature is reproducible, and
every example token verifies with ukey-verify (and fails for another
origin). `--regenerate` rewrites the vectors from tests/data/protocol/ with
the openssl CLI; a normal run only checks them."""
import base64
import hashlib
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent as harness  # noqa: E402
from agent import run_tool  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "tests", "data", "protocol")
DOC = os.path.join(ROOT, "docs", "PROTOCOL.md")
ORIGIN = "https://portal.example.gov.cn"
CHALLENGE = base64.b64encode(bytes(range(32))).decode()
VERIFY_TIME = "1800000000"  # 2027-01-15, inside the test certificates' validity
BEGIN, END = "<!-- vectors:begin -->", "<!-- vectors:end -->"


def signed_bytes(h):
    return h(ORIGIN.encode()).digest() + h(CHALLENGE.encode()).digest()


def raw_from_der(der, n):
    """DER ECDSA-Sig-Value -> r||s."""
    assert der[0] == 0x30
    i = 3 if der[1] == 0x81 else 2
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        ln = der[i + 1]
        out += der[i + 2:i + 2 + ln].lstrip(b"\0").rjust(n, b"\0")
        i += 2 + ln
    return out


def sign(alg, data):
    key = os.path.join(DATA, {"ES256": "es256", "ES384": "es384"}.get(alg, "rs256") + ".key")
    h = "-sha384" if alg.endswith("384") else "-sha256"
    opts = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"] if alg == "PS256" else []
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, "in"), os.path.join(d, "sig")
        with open(src, "wb") as f:
            f.write(data)
        run_tool("openssl", "dgst", h, *opts, "-sign", key, "-out", out, src)
        with open(out, "rb") as f:
            sig = f.read()
    return raw_from_der(sig, 48 if alg == "ES384" else 32) if alg.startswith("ES") else sig


def cert_b64(name):
    with open(os.path.join(DATA, name + ".pem")) as f:
        return "".join(f.read().strip().splitlines()[1:-1])


def make_vectors():
    tokens = {}
    for alg, cert in (("ES256", "es256"), ("ES384", "es384"), ("RS256", "rs256"), ("PS256", "rs256")):
        h = hashlib.sha384 if alg.endswith("384") else hashlib.sha256
        tokens[alg] = {"unverifiedCertificate": cert_b64(cert), "algorithm": alg,
                       "signature": base64.b64encode(sign(alg, signed_bytes(h))).decode(),
                       "format": "web-eid:1.0", "appVersion": "https://ukey-agent.invalid/releases/0.1.0"}
    return {"origin": ORIGIN, "challenge": CHALLENGE,
            "signed_bytes_sha256": signed_bytes(hashlib.sha256).hex(),
            "signed_bytes_sha384": signed_bytes(hashlib.sha384).hex(),
            "tokens": tokens}


def read_doc_vectors():
    with open(DOC) as f:
        text = f.read()
    block = text[text.index(BEGIN) + len(BEGIN):text.index(END)]
    return json.loads(block.strip().removeprefix("```json").removesuffix("```"))


class Vectors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.v = read_doc_vectors()

    def test_signed_bytes(self):
        self.assertEqual((self.v["origin"], self.v["challenge"]), (ORIGIN, CHALLENGE))
        self.assertEqual(self.v["signed_bytes_sha256"], signed_bytes(hashlib.sha256).hex())
        self.assertEqual(self.v["signed_bytes_sha384"], signed_bytes(hashlib.sha384).hex())

    def test_rs256_is_reproducible(self):
        expect = base64.b64encode(sign("RS256", signed_bytes(hashlib.sha256))).decode()
        self.assertEqual(self.v["tokens"]["RS256"]["signature"], expect)

    def test_every_example_token_verifies(self):
        verify = os.path.join(os.path.dirname(harness.AGENT), "ukey-verify")
        for alg, token in self.v["tokens"].items():
            with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
                json.dump(token, f)
                f.flush()
                args = [verify, "--token", f.name, "--challenge", CHALLENGE, "--ca-file",
                        os.path.join(DATA, "ca.pem"), "--time", VERIFY_TIME]
                ok = run_tool(*args, "--origin", ORIGIN, check=False)
                self.assertEqual(ok.returncode, 0, (alg, ok.stderr))
                self.assertIn("测试用户", ok.stdout)
                bad = run_tool(*args, "--origin", "https://phish.example.gov.cn", check=False)
                self.assertIn("SIGNATURE_INVALID", bad.stderr, alg)


if __name__ == "__main__":
    if "--regenerate" in sys.argv:
        with open(DOC) as f:
            text = f.read()
        block = "\n```json\n" + json.dumps(make_vectors(), indent=1, ensure_ascii=False) + "\n```\n"
        text = text[:text.index(BEGIN) + len(BEGIN)] + block + text[text.index(END):]
        with open(DOC, "w") as f:
            f.write(text)
        sys.exit(0)
    harness.main()
