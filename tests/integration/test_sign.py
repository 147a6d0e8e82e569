"""Data signatures for legacy pages (issue 15, POST /api/v1/sign), end to
end through pcscd and the virtual PIV card (P-256, P-384, RSA-2048) and
the softskf SM2 token: the legacy_sign policy refused before the card is
asked, raw signatures and CMS SignedData (detached and attached) verified
by the openssl CLI, text and Base64 data, the login's PIN rules (wrong
PIN, last try only with confirmation, the site's pin_entry), the
algorithm check, bad data, and consent mode (the window shows the text,
or the length and SHA-256 of binary data; GET /api/v1/sign/{id})."""
import base64
import hashlib
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
import test_skf  # noqa: E402
from agent import run_tool  # noqa: E402

LEGACY = "https://legacy.gov.example"       # legacy_sign, PIN from the page
WINDOW = "https://window.gov.example"       # legacy_sign, PIN in the agent's window
PORTAL = "https://portal.gov.example"       # no legacy_sign
TEXT = "登录随机数 / server random: 3q2+7w==\n<b>not HTML</b>"
BINARY = bytes(range(256)) * 3
JSON = {"Content-Type": "application/json"}


def oid_der(dotted):
    """The DER OBJECT IDENTIFIER of a dotted OID."""
    arcs = [int(a) for a in dotted.split(".")]
    body = bytes([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        while a > 0x7F:
            a >>= 7
            chunk.insert(0, 0x80 | (a & 0x7F))
        body += bytes(chunk)
    return bytes([6, len(body)]) + body


class Signing:
    """Requests and openssl checks shared by the PIV and SKF cases."""

    def sign(self, body, origin=LEGACY):
        headers = dict(JSON)
        if origin:
            headers["Origin"] = origin
        status, _, raw = self.agent.request("POST", "/api/v1/sign", headers, body=json.dumps(body))
        return status, json.loads(raw)

    write = test_skf.Base.write  # a file in self.dir

    def public_key(self, answer):
        pem = "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" % answer["certificate"]
        cert = self.write("signer.pem", pem)
        return self.write("pub.pem", run_tool("openssl", "x509", "-noout", "-pubkey", "-in", cert).stdout)

    def raw_verified(self, answer, data):
        """openssl's own verdict on a raw signature over `data`."""
        pub = self.public_key(answer)
        datafile = self.write("data.bin", data)
        sig = self.write("sig.der", base64.b64decode(answer["signature"]))
        if answer["algorithm"] == "SM3withSM2":
            r = run_tool("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", datafile,
                         "-sigfile", sig, "-digest", "sm3", "-pkeyopt", "distid:1234567812345678", check=False)
            return "Signature Verified Successfully" in r.stdout
        md = "-sha384" if answer["algorithm"] == "SHA384withECDSA" else "-sha256"
        r = run_tool("openssl", "dgst", md, "-verify", pub, "-signature", sig, datafile, check=False)
        return "Verified OK" in r.stdout


class PivBase(pcsc.CardCase, Signing):
    agent_config = {"pin_entry": "page",
                    "allow_origins": [{"origin": LEGACY, "legacy_sign": True},
                                      {"origin": WINDOW, "legacy_sign": True, "pin_entry": "consent"}, PORTAL]}

    def sent_to_card(self, since):
        """VERIFY with a PIN, or GENERAL AUTHENTICATE (the signature)."""
        return [l for l in self.card.apdu_log()[since:] if re.match(r"APDU .. (20 00 80 lc=[1-9]|87)", l)]

    def cms_verified(self, answer, data, attached):
        """`openssl cms -verify` against the test CA; the content it gives back is the data."""
        der = self.write("cms.der", base64.b64decode(answer["signature"]))
        ca = self.write("ca.pem", self.pki["ca"])
        out = os.path.join(self.dir, "content.bin")
        content = [] if attached else ["-content", self.write("data.bin", data)]
        r = run_tool("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", der, "-CAfile", ca,
                     "-purpose", "any", *content, "-out", out, check=False)
        with open(out, "rb") as f:
            return r.returncode == 0 and f.read() == data


class PageMode(PivBase):
    def test_policy_off_refused_before_the_card(self):
        since = len(self.card.apdu_log())
        for origin, body in ((PORTAL, {"data": TEXT, "pin": "123456"}),
                             (PORTAL, {"data": TEXT, "consent": True}),
                             (PORTAL, {"data": "", "format": "nope", "pin": "000000"}),
                             (None, {"data": TEXT, "pin": "123456"})):
            status, r = self.sign(body, origin=origin)
            self.assertEqual((status, r["error"]["code"]), (403, "SIGN_NOT_ALLOWED"), (origin, body))
        self.assertEqual(self.sent_to_card(since), [])
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)

    def test_raw_es256_es384_rsa_text(self):
        for cert, alg in (("9a", "SHA256withECDSA"), ("9d", "SHA384withECDSA"), ("9c", "SHA256withRSA")):
            status, r = self.sign({"data": TEXT, "pin": "123456", "certificate": cert})
            self.assertEqual(status, 200, r)
            self.assertEqual((r["format"], r["algorithm"], r["certificate_id"]), ("raw", alg, cert))
            self.assertEqual(r["certificate"], "".join(self.pki[cert][0].strip().splitlines()[1:-1]))
            self.assertEqual(r["token"], self.tokens()["tokens"][0]["id"])
            self.assertTrue(self.raw_verified(r, TEXT.encode()), alg)
            self.assertFalse(self.raw_verified(r, TEXT.encode() + b"x"), alg)

    def test_raw_base64_data_and_default_certificate(self):
        status, r = self.sign({"data": base64.b64encode(BINARY).decode(), "encoding": "base64", "pin": "123456",
                               "algorithm": "SHA256withECDSA"})
        self.assertEqual(status, 200, r)
        self.assertEqual(r["certificate_id"], "9a")
        self.assertTrue(self.raw_verified(r, BINARY))
        # The longest data: 32768 bytes.
        big = os.urandom(32768)
        status, r = self.sign({"data": base64.b64encode(big).decode(), "encoding": "base64", "pin": "123456",
                               "certificate": "9c"})
        self.assertEqual(status, 200, r)
        self.assertTrue(self.raw_verified(r, big))

    def test_cms_detached_and_attached(self):
        for cert in ("9a", "9c", "9d"):
            for fmt in ("cms", "cms-attached"):
                status, r = self.sign({"data": TEXT, "pin": "123456", "certificate": cert, "format": fmt})
                self.assertEqual((status, r.get("format")), (200, fmt), r)
                self.assertTrue(self.cms_verified(r, TEXT.encode(), fmt == "cms-attached"), (cert, fmt))
                if fmt == "cms":
                    self.assertFalse(self.cms_verified(r, TEXT.encode() + b"x", False))

    def test_refusals_send_nothing_to_the_card(self):
        since = len(self.card.apdu_log())
        cases = [
            ({"data": "", "pin": "123456"}, LEGACY, 400, "DATA_INVALID"),
            ({"data": "x" * 32769, "pin": "123456"}, LEGACY, 400, "DATA_INVALID"),
            ({"data": "a\u0000b", "pin": "123456"}, LEGACY, 400, "INVALID_JSON"),  # the JSON layer's rule
            ({"data": "", "encoding": "base64", "pin": "123456"}, LEGACY, 400, "DATA_INVALID"),
            ({"data": "not base64!", "encoding": "base64", "pin": "123456"}, LEGACY, 400, "DATA_INVALID"),
            ({"data": "AAAA\nAAAA", "encoding": "base64", "pin": "123456"}, LEGACY, 400, "DATA_INVALID"),
            ({"data": base64.b64encode(bytes(32769)).decode(), "encoding": "base64", "pin": "123456"}, LEGACY, 400,
             "DATA_INVALID"),
            ({"data": TEXT, "pin": "123456", "algorithm": "SHA256withRSA"}, LEGACY, 400, "ALGORITHM_MISMATCH"),
            ({"data": TEXT, "pin": "123456", "algorithm": "SM3withSM2"}, LEGACY, 400, "ALGORITHM_MISMATCH"),
            ({"data": TEXT, "pin": "123456", "algorithm": "MD5withRSA"}, LEGACY, 400, "ALGORITHM_MISMATCH"),
            ({"data": TEXT, "pin": "123456", "certificate": "9c", "algorithm": "SHA256withECDSA"}, LEGACY, 400,
             "ALGORITHM_MISMATCH"),
            ({"data": TEXT, "pin": "123456", "encoding": "hex"}, LEGACY, 400, "INVALID_REQUEST"),
            ({"data": TEXT, "pin": "123456", "format": "pkcs7"}, LEGACY, 400, "INVALID_REQUEST"),
            ({"data": TEXT, "pin": "123456", "origin": PORTAL}, LEGACY, 400, "INVALID_REQUEST"),
            ({"data": 12, "pin": "123456"}, LEGACY, 400, "INVALID_REQUEST"),
            ({"pin": "123456"}, LEGACY, 400, "INVALID_REQUEST"),
            ({"data": TEXT}, LEGACY, 400, "PIN_REQUIRED"),
            ({"data": TEXT, "pin": "12ab"}, LEGACY, 400, "PIN_FORMAT"),
            ({"data": TEXT, "pin": "123456", "consent": True}, LEGACY, 400, "INVALID_REQUEST"),
            ({"data": TEXT, "pin": "123456"}, WINDOW, 403, "PIN_ENTRY_IN_AGENT_WINDOW"),
            ({"data": TEXT, "pin": "123456", "certificate": "9e"}, LEGACY, 404, "CERT_NOT_FOUND"),
        ]
        for body, origin, status, code in cases:
            got_status, got = self.sign(body, origin=origin)
            self.assertEqual((got_status, got["error"]["code"]), (status, code), body)
        self.assertEqual(self.sent_to_card(since), [])
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)

    def test_wrong_pin_and_the_last_try(self):
        since = len(self.card.apdu_log())
        for left in (2, 1):
            status, r = self.sign({"data": TEXT, "pin": "000000"})
            self.assertEqual((status, r["error"]["code"], r["error"]["retries_left"]), (403, "PIN_INCORRECT", left))
        self.assertFalse(any(" 87 " in l for l in self.card.apdu_log()[since:]))
        status, r = self.sign({"data": TEXT, "pin": "123456"})
        self.assertEqual((status, r["error"]["code"]), (409, "PIN_LAST_ATTEMPT"))
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 1)
        status, r = self.sign({"data": TEXT, "pin": "123456", "confirm_last_attempt": True})
        self.assertEqual(status, 200, r)
        self.assertTrue(self.raw_verified(r, TEXT.encode()))
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)

    def test_pin_never_logged(self):
        self.sign({"data": TEXT, "pin": "918273"})
        log = self.agent.log_text()
        for secret in ("918273", "3931383237"):
            self.assertNotIn(secret, log)


class ConsentMode(PivBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.self_origin = "https://127.0.0.1:%d" % cls.agent.port

    def window(self, method, path, body=None):
        """A request from the consent page itself (the agent's own origin)."""
        headers = dict(JSON) if body is not None else {}
        headers["Sec-Fetch-Site"] = "same-origin"
        if method == "POST":
            headers["Origin"] = self.self_origin
        status, _, raw = self.agent.request(method, path, headers, None if body is None else json.dumps(body))
        return status, json.loads(raw)

    def result(self, rid, kind="sign"):
        status, _, raw = self.agent.request("GET", "/api/v1/%s/%s" % (kind, rid), {"Origin": WINDOW})
        return status, json.loads(raw)

    def pending(self, body):
        status, r = self.sign(dict(body, consent=True), origin=WINDOW)
        self.assertEqual(status, 202, r)
        self.assertEqual(r["consent_url"], "https://127.0.0.1:%d/consent.html#%s" % (self.agent.port, r["request"]))
        return r["request"]

    def test_text_end_to_end(self):
        rid = self.pending({"data": TEXT, "certificate": "9c"})
        self.assertEqual(self.result(rid)[1]["state"], "pending")
        # Not a login's: the login route does not know it.
        self.assertEqual(self.result(rid, "login")[1]["error"]["code"], "CONSENT_NOT_FOUND")
        status, info = self.window("GET", "/api/v1/consent/" + rid)
        self.assertEqual(status, 200, info)
        self.assertEqual((info["kind"], info["origin"]), ("sign", WINDOW))
        self.assertEqual(info["sign"], {"format": "raw", "encoding": "text", "text": TEXT})
        self.assertEqual(info["certificate"]["subject_cn"], "张三 signing")
        status, r = self.window("POST", "/api/v1/consent/" + rid, {"pin": "000000"})
        self.assertEqual((status, r["error"]["code"]), (403, "PIN_INCORRECT"))
        self.assertEqual(self.result(rid)[0], 202)
        status, r = self.window("POST", "/api/v1/consent/" + rid, {"pin": "123456"})
        self.assertEqual((status, r), (200, {"done": True}))
        status, r = self.result(rid)
        self.assertEqual((status, r["algorithm"]), (200, "SHA256withRSA"), r)
        self.assertTrue(self.raw_verified(r, TEXT.encode()))
        self.assertEqual(self.result(rid)[1]["error"]["code"], "CONSENT_NOT_FOUND")

    def test_binary_shows_length_and_digest(self):
        rid = self.pending({"data": base64.b64encode(BINARY).decode(), "encoding": "base64", "format": "cms"})
        status, info = self.window("GET", "/api/v1/consent/" + rid)
        self.assertEqual(info["sign"], {"format": "cms", "encoding": "base64", "bytes": len(BINARY),
                                        "sha256": hashlib.sha256(BINARY).hexdigest()})
        status, r = self.window("POST", "/api/v1/consent/" + rid, {"pin": "123456"})
        self.assertEqual(status, 200, r)
        status, r = self.result(rid)
        self.assertEqual(status, 200, r)
        self.assertTrue(self.cms_verified(r, BINARY, False))

    def test_withdrawn_by_the_page(self):
        """DELETE /api/v1/sign/{id} (the SDK's facades, asked again): the
        window hears CONSENT_REPLACED and the card signs nothing."""
        rid = self.pending({"data": TEXT, "certificate": "9c"})
        self.assertEqual(self.agent.request("DELETE", "/api/v1/login/" + rid, dict(JSON, Origin=WINDOW), "{}")[0], 404)
        status, _, raw = self.agent.request("DELETE", "/api/v1/sign/" + rid, dict(JSON, Origin=WINDOW), "{}")
        self.assertEqual((status, json.loads(raw)), (200, {"withdrawn": True}))
        status, r = self.window("POST", "/api/v1/consent/" + rid, {"pin": "123456"})
        self.assertEqual((status, r["error"]["code"]), (409, "CONSENT_REPLACED"))
        self.assertEqual(self.result(rid)[1]["error"]["code"], "CONSENT_REPLACED")

    def test_login_consent_still_a_login(self):
        status, _, raw = self.agent.request("POST", "/api/v1/login", dict(JSON, Origin=WINDOW),
                                            json.dumps({"challenge": base64.b64encode(bytes(32)).decode(),
                                                        "consent": True}))
        rid = json.loads(raw)["request"]
        self.assertEqual(status, 202)
        self.assertEqual(self.window("GET", "/api/v1/consent/" + rid)[1]["kind"], "login")
        self.assertEqual(self.result(rid)[1]["error"]["code"], "CONSENT_NOT_FOUND")


class Sm2(test_skf.Base, Signing):
    """SM3withSM2 from the softskf SM2 container, raw and CMS (GM/T 0010 OIDs)."""
    agent_config = {"pin_entry": "page", "allow_origins": [{"origin": LEGACY, "legacy_sign": True}]}

    def test_raw_sm2_text_and_base64(self):
        for body, data in (({"data": TEXT}, TEXT.encode()),
                           ({"data": base64.b64encode(BINARY).decode(), "encoding": "base64"}, BINARY)):
            status, r = self.sign(dict(body, pin=test_skf.PIN, algorithm="SM3withSM2"))
            self.assertEqual(status, 200, r)
            self.assertEqual(r["algorithm"], "SM3withSM2")
            self.assertEqual(r["certificate"], self.pem_body(self.pki.user))
            self.assertTrue(self.raw_verified(r, data))
            self.assertFalse(self.raw_verified(r, data + b"x"))

    def test_sm2_cms_uses_the_gmt_0010_oids(self):
        for fmt in ("cms", "cms-attached"):
            status, r = self.sign({"data": TEXT, "pin": test_skf.PIN, "format": fmt})
            self.assertEqual(status, 200, r)
            der = base64.b64decode(r["signature"])
            for oid in ("1.2.156.10197.6.1.4.2.2", "1.2.156.10197.6.1.4.2.1", "1.2.156.10197.1.401"):
                self.assertIn(oid_der(oid), der, (fmt, oid))
            self.assertEqual(TEXT.encode() in der, fmt == "cms-attached")

    def test_algorithm_mismatch(self):
        status, r = self.sign({"data": TEXT, "pin": test_skf.PIN, "algorithm": "SHA256withECDSA"})
        self.assertEqual((status, r["error"]["code"]), (400, "ALGORITHM_MISMATCH"))


if __name__ == "__main__":
    harness.main()
