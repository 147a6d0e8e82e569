"""Login signing bound to the portal's origin (issue 4), end to end through
pcscd and the virtual card, each token checked independently with the
openssl CLI: hash(origin) || hash(challenge), Web eID format."""
import base64
import hashlib
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
from agent import run_tool  # noqa: E402

PORTAL = "https://portal.gov.example"
OTHER = "https://other.gov.example"
EVIL = "https://attacker.example"
CHALLENGE = base64.b64encode(bytes(range(32))).decode()


def der_from_raw(raw):
    """JOSE r||s -> DER ECDSA-Sig-Value, for openssl."""
    n = len(raw) // 2

    def integer(b):
        b = b.lstrip(b"\0") or b"\0"
        if b[0] & 0x80:
            b = b"\0" + b
        return bytes([2, len(b)]) + b
    body = integer(raw[:n]) + integer(raw[n:])
    return bytes([0x30, len(body)]) + body if len(body) < 0x80 else bytes([0x30, 0x81, len(body)]) + body


class LoginBase(pcsc.CardCase):
    """The card fixtures (pcsc.CardCase), with the PKI's CRL served on loopback."""
    # These portals send the PIN from their page (the consent window is test_consent's).
    agent_args = ("--allow-origin", PORTAL, "--allow-origin", OTHER)
    agent_config = {"pin_entry": "page"}

    @classmethod
    def pki_options(cls):
        cls.crl_server = pcsc.CrlServer(cls.dir)
        return {"crl_url": "http://127.0.0.1:%d/ca.crl" % cls.crl_server.port}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.crl_server.stop()

    def login(self, body, origin=PORTAL):
        headers = {"Content-Type": "application/json"}
        if origin:
            headers["Origin"] = origin
        status, _, raw = self.agent.request("POST", "/api/v1/login", headers, body=json.dumps(body))
        return status, json.loads(raw)

    def verify_with_openssl(self, token, origin, challenge, slot):
        """Rebuilds the signed bytes and checks the signature with openssl."""
        alg = token["algorithm"]
        h = hashlib.sha384 if alg.endswith("384") else hashlib.sha256
        signed = h(origin.encode()).digest() + h(challenge.encode()).digest()
        sig = base64.b64decode(token["signature"])
        if alg.startswith("ES"):
            self.assertEqual(len(sig), 96 if alg == "ES384" else 64)
            sig = der_from_raw(sig)
        files = {}
        for name, data in (("signed", signed), ("sig", sig)):
            files[name] = os.path.join(self.dir, name + ".bin")
            with open(files[name], "wb") as f:
                f.write(data)
        pub = os.path.join(self.dir, "pub.pem")
        with open(pub, "w") as f:
            f.write(run_tool("openssl", "x509", "-noout", "-pubkey", input=self.pki[slot][0]).stdout)
        opts = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"] if alg == "PS256" else []
        r = run_tool("openssl", "dgst", "-sha384" if alg.endswith("384") else "-sha256", *opts, "-verify", pub,
                     "-signature", files["sig"], files["signed"], check=False)
        return "Verified OK" in r.stdout

    def check_token(self, token, slot, alg):
        self.assertEqual(token["format"], "web-eid:1.0")
        self.assertEqual(token["algorithm"], alg)
        self.assertTrue(token["appVersion"].startswith("https://"))
        pem_body = "".join(self.pki[slot][0].strip().splitlines()[1:-1])
        self.assertEqual(token["unverifiedCertificate"], pem_body)
        self.assertEqual(set(token), {"unverifiedCertificate", "algorithm", "signature", "format", "appVersion"})
        self.assertTrue(self.verify_with_openssl(token, PORTAL, CHALLENGE, slot))
        # Bound to the origin and the challenge: any other fails (relay, replay of another challenge).
        self.assertFalse(self.verify_with_openssl(token, OTHER, CHALLENGE, slot))
        self.assertFalse(self.verify_with_openssl(token, PORTAL, CHALLENGE[:-2] + "A=", slot))



def card_commands(card, since):
    """The commands in a card's log since line `since`, without their data."""
    return [l for l in card.apdu_log()[since:] if l.startswith("APDU")]


class Login(LoginBase):
    def test_card_commands_of_a_login(self):
        """Issue 19: a login on a card the agent has read spends SELECT, the
        PIN's counter (fresh, for the last-attempt guard), VERIFY, GENERAL
        AUTHENTICATE and the logout; no CHUID (the reader's event counter
        says it is the same insertion), no PUK counter. The first right PIN
        of an insertion also reads the count it leaves, once."""
        self.tokens()
        body = {"challenge": CHALLENGE, "pin": "123456"}
        warm = ["APDU 00 A4 04 00 lc=11", "APDU 00 20 00 80 lc=0", "APDU 00 20 00 80 lc=8",
                "APDU 00 87 11 9A lc=38", "APDU 00 20 FF 80 lc=0"]
        since = len(self.card.apdu_log())
        self.assertEqual(self.login(body)[0], 200)
        self.assertEqual(card_commands(self.card, since), warm + ["APDU 00 20 00 80 lc=0"])
        for _ in range(2):
            since = len(self.card.apdu_log())
            self.assertEqual(self.login(body)[0], 200)
            self.assertEqual(card_commands(self.card, since), warm)
        # A wrong PIN's answer tells the count; the right one restores it.
        status, err = self.login({"challenge": CHALLENGE, "pin": "000000"})
        self.assertEqual((status, err["error"]["retries_left"]), (403, 2))
        self.assertEqual(self.tokens()["tokens"][0]["pin"]["retries_left"], 2)
        since = len(self.card.apdu_log())
        self.assertEqual(self.login(body)[0], 200)
        self.assertEqual(card_commands(self.card, since), warm)
        self.assertEqual(self.tokens()["tokens"][0]["pin"]["retries_left"], 3)
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)

    def test_es256_with_the_authentication_certificate(self):
        status, token = self.login({"challenge": CHALLENGE, "pin": "123456"})
        self.assertEqual(status, 200, token)
        self.check_token(token, "9a", "ES256")
        log = self.card.apdu_log()
        self.assertTrue(any(l.startswith("APDU 00 87 11 9A") for l in log), log)
        self.assertTrue(any(l.startswith("APDU 00 20 FF 80") for l in log), log)
        # Another PC/SC client finds the card not verified afterwards.
        out = run_tool("opensc-tool", "-r", pcsc.READER, "-s", "00A4040009A00000030800001000",
                       "-s", "00200080").stdout
        self.assertIn("SW1=0x63, SW2=0xC3", out)

    def test_es384(self):
        status, token = self.login({"challenge": CHALLENGE, "pin": "123456", "certificate": "9d"})
        self.assertEqual(status, 200, token)
        self.check_token(token, "9d", "ES384")

    def test_rs256_and_ps256(self):
        status, token = self.login({"challenge": CHALLENGE, "pin": "123456", "certificate": "9c"})
        self.assertEqual(status, 200, token)
        self.check_token(token, "9c", "RS256")
        status, token = self.login({"challenge": CHALLENGE, "pin": "123456", "certificate": "9c",
                                    "algorithm": "PS256"})
        self.assertEqual(status, 200, token)
        self.check_token(token, "9c", "PS256")

    def test_challenges_up_to_1024_characters(self):
        """The same limit as the consent path (redteam-2 4.3, 4.7): 700 and 1024 characters are signed."""
        for n in (525, 768):
            challenge = base64.b64encode(os.urandom(n)).decode()
            status, token = self.login({"challenge": challenge, "pin": "123456"})
            self.assertEqual(status, 200, token)
            self.assertTrue(self.verify_with_openssl(token, PORTAL, challenge, "9a"))

    def sent_to_card(self, since):
        return [l for l in self.card.apdu_log()[since:] if re.match(r"APDU .. (20 00 80 lc=[1-9]|87)", l)]

    def test_refusals_send_nothing_to_the_card(self):
        since = len(self.card.apdu_log())
        cases = [
            ({"challenge": base64.b64encode(b"x" * 16).decode(), "pin": "123456"}, PORTAL, 400, "CHALLENGE_INVALID"),
            ({"challenge": "not base64!!", "pin": "123456"}, PORTAL, 400, "CHALLENGE_INVALID"),
            # One rule with the consent path (redteam-2 4.5, W11): no line breaks, spaces or control characters,
            # at most 1024 characters.
            ({"challenge": CHALLENGE[:20] + "\r\n" + CHALLENGE[20:], "pin": "123456"}, PORTAL, 400,
             "CHALLENGE_INVALID"),
            ({"challenge": CHALLENGE[:20] + "\n" + CHALLENGE[20:], "pin": "123456"}, PORTAL, 400, "CHALLENGE_INVALID"),
            ({"challenge": CHALLENGE + " ", "pin": "123456"}, PORTAL, 400, "CHALLENGE_INVALID"),
            ({"challenge": CHALLENGE + "\t", "pin": "123456"}, PORTAL, 400, "CHALLENGE_INVALID"),
            ({"challenge": base64.b64encode(os.urandom(771)).decode(), "pin": "123456"}, PORTAL, 400,
             "CHALLENGE_INVALID"),
            ({"challenge": CHALLENGE}, PORTAL, 400, "PIN_REQUIRED"),
            ({"challenge": CHALLENGE, "pin": ""}, PORTAL, 400, "PIN_REQUIRED"),
            ({"challenge": CHALLENGE, "pin": "12ab"}, PORTAL, 400, "PIN_FORMAT"),
            ({"challenge": CHALLENGE, "pin": "123456"}, EVIL, 403, "ORIGIN_NOT_ALLOWED"),
            ({"challenge": CHALLENGE, "pin": "123456"}, None, 400, "ORIGIN_REQUIRED"),
            ({"challenge": CHALLENGE, "pin": "123456", "origin": OTHER}, PORTAL, 400, "INVALID_REQUEST"),
            ({"challenge": CHALLENGE, "pin": "123456", "hash": "AAAA"}, PORTAL, 400, "INVALID_REQUEST"),
            ({"challenge": CHALLENGE, "pin": "123456", "certificate": "9e"}, PORTAL, 404, "CERT_NOT_FOUND"),
            ({"challenge": CHALLENGE, "pin": "123456", "token": "piv-nope"}, PORTAL, 404, "TOKEN_NOT_FOUND"),
        ]
        for body, origin, status, code in cases:
            got_status, got = self.login(body, origin=origin)
            self.assertEqual((got_status, got["error"]["code"]), (status, code), body)
        self.assertEqual(self.sent_to_card(since), [])

    def test_no_pin_no_signature_even_right_after_a_login(self):
        self.assertEqual(self.login({"challenge": CHALLENGE, "pin": "123456"}, origin=OTHER)[0], 200)
        since = len(self.card.apdu_log())
        status, body = self.login({"challenge": CHALLENGE})
        self.assertEqual((status, body["error"]["code"]), (400, "PIN_REQUIRED"))
        self.assertEqual(self.sent_to_card(since), [])

    def test_no_pin_pad_on_the_virtual_reader(self):
        """vpcd has no PIN pad (it lists no PC/SC Part 10 features): the token
        says so, and a request without a PIN is refused before any VERIFY
        goes to the card, as for any reader without a pad (docs/API.md)."""
        _, _, raw = self.agent.request("GET", "/api/v1/tokens")
        token = json.loads(raw)["tokens"][0]
        self.assertIs(token["pin"]["pin_pad"], False)
        since = len(self.card.apdu_log())
        for body in ({"challenge": CHALLENGE}, {"challenge": CHALLENGE, "pin": ""},
                     {"challenge": CHALLENGE, "confirm_last_attempt": True}):
            status, got = self.login(body)
            self.assertEqual((status, got["error"]["code"]), (400, "PIN_REQUIRED"), body)
        headers = {"Content-Type": "application/json", "Origin": PORTAL}
        for body in ({}, {"confirm_last_attempt": True}):
            status, _, raw = self.agent.request("POST", "/api/v1/tokens/%s/pin/verify" % token["id"], headers,
                                                body=json.dumps(body))
            self.assertEqual((status, json.loads(raw)["error"]["code"]), (400, "INVALID_REQUEST"), body)
        self.assertEqual(self.sent_to_card(since), [])
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)
        # The keyboard path is unchanged.
        self.assertEqual(self.login({"challenge": CHALLENGE, "pin": "123456"})[0], 200)

    def test_wrong_pin_signs_nothing(self):
        since = len(self.card.apdu_log())
        status, body = self.login({"challenge": CHALLENGE, "pin": "000000"})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]), (403, "PIN_INCORRECT", 2))
        self.assertFalse(any(" 87 " in l for l in self.card.apdu_log()[since:]))
        self.assertEqual(self.login({"challenge": CHALLENGE, "pin": "123456"})[0], 200)

    def test_pin_never_logged(self):
        self.login({"challenge": CHALLENGE, "pin": "918273"})
        self.login({"challenge": CHALLENGE, "pin": "123456"})
        log = self.agent.log_text()
        for secret in ("918273", "123456", "3931383237"):
            self.assertNotIn(secret, log)


class PagePacing(LoginBase):
    """Finding 4 (W4): a page-mode site sending wrong PINs quickly meets the
    agent's pause before the card is asked; after it, the card is asked
    again, and a right PIN ends the pacing."""
    pin_retry_delay_ms = 500

    def test_wrong_pins_from_a_page_are_paced(self):
        status, body = self.login({"challenge": CHALLENGE, "pin": "000000"})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]), (403, "PIN_INCORRECT", 2))
        self.assertTrue(0 < body["error"]["retry_after_ms"] <= 500, body)
        verifies = lambda: [l for l in self.card.apdu_log() if re.match(r"APDU 00 20 00 80 lc=8", l)]
        sent = len(verifies())
        # The burn of the review (3.3, 3.5): the next tries come at once.
        for pin in ("000001", "000002"):
            status, body = self.login({"challenge": CHALLENGE, "pin": pin, "confirm_last_attempt": True})
            self.assertEqual((status, body["error"]["code"]), (429, "PIN_TOO_SOON"), body)
        self.assertEqual(len(verifies()), sent, "no VERIFY may reach the card")
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 2)
        time.sleep(body["error"]["retry_after_ms"] / 1000 + 0.05)
        status, body = self.login({"challenge": CHALLENGE, "pin": "123456"})
        self.assertEqual(status, 200, body)
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)
        status, body = self.login({"challenge": CHALLENGE, "pin": "000000"})
        self.assertTrue(0 < body["error"]["retry_after_ms"] <= 500, body)


class Verify(LoginBase):
    """ukey-verify (libukeyverify) on tokens from the agent: valid ones pass,
    and each kind of bad one is caught and named."""

    def verify(self, token, origin=PORTAL, challenge=CHALLENGE, ca=None, extra=()):
        path = os.path.join(self.dir, "token.json")
        with open(path, "w") as f:
            f.write(token if isinstance(token, str) else json.dumps(token))
        r = run_tool(os.path.join(os.path.dirname(harness.AGENT), "ukey-verify"), "--token", path,
                     "--challenge", challenge, "--origin", origin, "--ca-file", ca or os.path.join(self.dir, "ca.pem"),
                     *extra, check=False)
        return r.returncode, r.stdout, r.stderr

    def token(self, **extra):
        status, token = self.login(dict({"challenge": CHALLENGE, "pin": "123456"}, **extra))
        self.assertEqual(status, 200, token)
        return token

    def test_valid_tokens_pass(self):
        for extra, alg in (({}, "ES256"), ({"certificate": "9d"}, "ES384"), ({"certificate": "9c"}, "RS256"),
                           ({"certificate": "9c", "algorithm": "PS256"}, "PS256")):
            token = self.token(**extra)
            self.assertEqual(token["algorithm"], alg)
            code, out, err = self.verify(token)
            self.assertEqual(code, 0, err)
            self.assertIn("CN=张三", out)

    def test_each_failure_is_named(self):
        token = self.token()
        other_ca = os.path.join(self.dir, "other-ca.pem")
        run_tool("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", os.path.join(self.dir, "other-ca.key"), "-out", other_ca, "-days", "30",
                 "-subj", "/CN=other CA")
        sig = bytearray(base64.b64decode(token["signature"]))
        sig[5] ^= 0x01
        flipped = dict(token, signature=base64.b64encode(bytes(sig)).decode())
        cases = [
            (dict(kwargs={"origin": OTHER}), "SIGNATURE_INVALID"),
            (dict(kwargs={"challenge": base64.b64encode(b"y" * 32).decode()}), "SIGNATURE_INVALID"),
            (dict(token=flipped), "SIGNATURE_INVALID"),
            (dict(kwargs={"ca": other_ca}), "CERT_UNTRUSTED"),
            (dict(kwargs={"extra": ("--time", "4102444800")}), "CERT_NOT_VALID"),  # 2100-01-01
            (dict(token=dict(token, algorithm="ES384")), "ALGORITHM_MISMATCH"),
            (dict(token=dict(token, algorithm="HS256")), "ALGORITHM_MISMATCH"),
            (dict(token=json.dumps(token)[:-20]), "TOKEN_FORMAT"),
            (dict(token="this is not JSON"), "TOKEN_FORMAT"),
            (dict(token=dict(token, format="jwt")), "TOKEN_FORMAT"),
            (dict(token=dict(token, unverifiedCertificate="AAAA")), "CERT_DECODE"),
        ]
        for case, name in cases:
            code, out, err = self.verify(case.get("token", token), **case.get("kwargs", {}))
            self.assertEqual(code, 1, (name, err))
            self.assertIn(name, err)

    def test_revocation_through_the_distribution_point(self):
        token = self.token()
        crl = pcsc.make_crl(self.dir)
        for extra in (("--crl-check",), ("--crl", crl)):
            code, _, err = self.verify(token, extra=extra)
            self.assertEqual(code, 0, (extra, err))
        crl = pcsc.make_crl(self.dir, revoke=("9a",))
        code, _, err = self.verify(token, extra=("--crl-check",))
        self.assertEqual(code, 1)
        self.assertIn("CERT_REVOKED", err)
        code, _, err = self.verify(token, extra=("--crl", crl))
        self.assertIn("CERT_REVOKED", err)
        os.unlink(crl)  # the distribution point answers 404: no verdict
        code, _, err = self.verify(token, extra=("--crl-check",))
        self.assertEqual(code, 1)
        self.assertIn("REVOCATION_UNKNOWN", err)


if __name__ == "__main__":
    harness.main()
