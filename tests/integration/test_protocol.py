"""docs/PROTOCOL.md's test vectors are true: the signed bytes are
hash(origin) || hash(challenge), SM2-SM3's e is SM3(Z_A || that) with the
default ID (Z_A recomputed here from the curve and the certificate's key),
the RS256 signature is reproducible, and every example token verifies with
ukey-verify (and fails for another origin). `--regenerate` rewrites the vectors from tests/data/protocol/ with
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
from pki import raw_from_der  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "tests", "data", "protocol")
DOC = os.path.join(ROOT, "docs", "PROTOCOL.md")
ORIGIN = "https://portal.example.gov.cn"
CHALLENGE = base64.b64encode(bytes(range(32))).decode()
VERIFY_TIME = "1800000000"  # 2027-01-15, inside the test certificates' validity
BEGIN, END = "<!-- vectors:begin -->", "<!-- vectors:end -->"
SM2_ID = b"1234567812345678"
# sm2p256v1 (GM/T 0003.5): a, b, x_G, y_G.
SM2_CURVE = bytes.fromhex(
    "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC"
    "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93"
    "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7"
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0")


def sm3(data):
    return hashlib.new("sm3", data)


def sm2_e(cert, m):
    """e = SM3(Z_A || m), Z_A = SM3(ENTL || ID || a || b || x_G || y_G || x_A || y_A)."""
    spki = run_tool("openssl", "x509", "-in", os.path.join(DATA, cert + ".pem"), "-noout", "-pubkey").stdout
    point = base64.b64decode("".join(spki.strip().splitlines()[1:-1]))[-64:]
    z = sm3((8 * len(SM2_ID)).to_bytes(2, "big") + SM2_ID + SM2_CURVE + point).digest()
    return sm3(z + m).digest()


def signed_bytes(h):
    return h(ORIGIN.encode()).digest() + h(CHALLENGE.encode()).digest()


def sign(alg, data):
    key = os.path.join(DATA, {"ES256": "es256", "ES384": "es384", "SM2-SM3": "sm2"}.get(alg, "rs256") + ".key")
    h = "-sha384" if alg.endswith("384") else "-sm3" if alg == "SM2-SM3" else "-sha256"
    opts = {"PS256": ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"],
            "SM2-SM3": ["-sigopt", "distid:" + SM2_ID.decode()]}.get(alg, [])
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, "in"), os.path.join(d, "sig")
        with open(src, "wb") as f:
            f.write(data)
        run_tool("openssl", "dgst", h, *opts, "-sign", key, "-out", out, src)
        with open(out, "rb") as f:
            sig = f.read()
    return raw_from_der(sig, 48 if alg == "ES384" else 32) if alg.startswith(("ES", "SM2")) else sig


def cert_b64(name):
    with open(os.path.join(DATA, name + ".pem")) as f:
        return "".join(f.read().strip().splitlines()[1:-1])


def make_vectors():
    tokens = {}
    for alg, cert in (("ES256", "es256"), ("ES384", "es384"), ("RS256", "rs256"), ("PS256", "rs256"),
                      ("SM2-SM3", "sm2")):
        h = hashlib.sha384 if alg.endswith("384") else sm3 if alg == "SM2-SM3" else hashlib.sha256
        tokens[alg] = {"unverifiedCertificate": cert_b64(cert), "algorithm": alg,
                       "signature": base64.b64encode(sign(alg, signed_bytes(h))).decode(),
                       "format": "web-eid:1.0", "appVersion": "https://ukey-agent.invalid/releases/0.1.0"}
    return {"origin": ORIGIN, "challenge": CHALLENGE,
            "signed_bytes_sha256": signed_bytes(hashlib.sha256).hex(),
            "signed_bytes_sha384": signed_bytes(hashlib.sha384).hex(),
            "signed_bytes_sm3": signed_bytes(sm3).hex(),
            "sm2_e": sm2_e("sm2", signed_bytes(sm3)).hex(),
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
        self.assertEqual(self.v["signed_bytes_sm3"], signed_bytes(sm3).hex())
        self.assertEqual(self.v["sm2_e"], sm2_e("sm2", signed_bytes(sm3)).hex())

    def test_sm2_z_of_the_standard(self):
        """Z_A as computed here is GM/T 0003.5 Annex A's for its key."""
        point = bytes.fromhex("09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
                              "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
        z = sm3((8 * len(SM2_ID)).to_bytes(2, "big") + SM2_ID + SM2_CURVE + point).hexdigest()
        self.assertEqual(z, "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3")

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
                        os.path.join(DATA, "ca.pem"), "--ca-file", os.path.join(DATA, "sm2-ca.pem"),
                        "--time", VERIFY_TIME]
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
