"""OpenPGP cards (issue 7, part 2), through the real pcscd and the virtual
card's OpenPGP profile: the agent lists the token and its authentication
certificate, counts PW1 down, blocks it and unblocks it with the Resetting
Code, and logs in with RSA, P-256 and P-384 authentication keys (tokens
checked by ukey-verify). Independent clients read the same card: GnuPG's
scdaemon over PC/SC (serial, fingerprints) and OpenSC's openpgp driver
(the certificate)."""
import base64
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
from agent import run_tool  # noqa: E402

SERIAL = "1234ABCD"
TOKEN = "openpgp-fffe1234abcd"  # manufacturer FFFE + serial number, from the AID
PORTAL = "https://portal.gov.example"
CHALLENGE = base64.b64encode(bytes(range(32))).decode()
JSON = {"Content-Type": "application/json"}
FPRS = {"sig": "11" * 20, "dec": "22" * 20, "aut": "0123456789ABCDEF0123456789ABCDEF01234567"}
OPENSC_PKCS11 = (glob.glob("/usr/lib/*/opensc-pkcs11.so") or ["opensc-pkcs11.so (install opensc)"])[0]
PCSCLITE = (glob.glob("/usr/lib/*/libpcsclite.so.1") or ["libpcsclite.so.1"])[0]


def der(pem):
    return base64.b64decode("".join(pem.strip().splitlines()[1:-1]))


class OpenPGPCard(pcsc.CardCase):
    aut = "9a"
    token_id = TOKEN
    agent_args = ("--allow-origin", PORTAL)
    agent_config = {"pin_entry": "page"}

    def write_state(self, path):
        pcsc.write_openpgp_state(path, self.pki, aut=self.aut, serial=SERIAL, fingerprints=FPRS)

    def login(self, body):
        status, _, raw = self.agent.request("POST", "/api/v1/login", dict(JSON, Origin=PORTAL),
                                            body=json.dumps(body))
        return status, json.loads(raw)

    def ukey_verify(self, token):
        path = os.path.join(self.dir, "token.json")
        with open(path, "w") as f:
            json.dump(token, f)
        return run_tool(os.path.join(os.path.dirname(harness.AGENT), "ukey-verify"), "--token", path,
                        "--challenge", CHALLENGE, "--origin", PORTAL, "--ca-file", os.path.join(self.dir, "ca.pem"),
                        check=False)

    def check_login(self, alg):
        status, token = self.login({"challenge": CHALLENGE, "pin": "123456"})
        self.assertEqual(status, 200, token)
        self.assertEqual(token["algorithm"], alg)
        self.assertEqual(token["unverifiedCertificate"], "".join(self.pki[self.aut][0].strip().splitlines()[1:-1]))
        r = self.ukey_verify(token)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("CN=张三", r.stdout)
        log = self.card.apdu_log()
        self.assertTrue(any(l.startswith("APDU 00 88 00 00") for l in log), log)
        # Logged out at the end (OpenPGP 3.4 7.2.2 VERIFY P1=FF), and another
        # PC/SC client finds PW1 not verified.
        self.assertTrue(any(l.startswith("APDU 00 20 FF 82") for l in log), log)
        out = run_tool("opensc-tool", "-r", pcsc.READER, "-s", "00A4040006D27600012401", "-s", "00200082").stdout
        self.assertIn("SW1=0x63, SW2=0xC3", out)

    def opensc_signs(self, mech, extra=()):
        """OpenSC's PKCS#11 module (its openpgp driver) signs through INTERNAL
        AUTHENTICATE; openssl verifies with the certificate's key."""
        data = os.path.join(self.dir, "data.bin")
        with open(data, "wb") as f:
            f.write(b"ukey-agent independent OpenPGP check")
        sig = os.path.join(self.dir, "sig.bin")
        run_tool("pkcs11-tool", "--module", OPENSC_PKCS11, "--login", "--pin", "123456", "--sign", "-m", mech,
                 "--id", "03", "-i", data, "-o", sig, *extra, env=dict(os.environ, OPENSC_DRIVER="openpgp"))
        pub = os.path.join(self.dir, "pub.pem")
        with open(pub, "w") as f:
            f.write(run_tool("openssl", "x509", "-noout", "-pubkey", input=self.pki[self.aut][0]).stdout)
        self.assertIn("Verified OK", run_tool("openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig,
                                              data).stdout)
        self.assertTrue(any(l.startswith("APDU 00 88 00 00") for l in self.card.apdu_log()))


class Tokens(OpenPGPCard):
    def test_lists_the_token_and_its_certificate(self):
        body = self.tokens()
        [tok] = body["tokens"]
        self.assertEqual((tok["id"], tok["type"], tok["serial"], tok["label"]), (TOKEN, "OpenPGP", SERIAL, "OpenPGP"))
        # PW1: any UTF-8, at least 6, at most what C4 says (64 on this card).
        self.assertEqual(tok["pin"], {"retries_left": 3, "retries_low": False, "blocked": False, "pin_pad": False, "digits_only": False,
                                      "min_length": 6, "max_length": 64, "retry_after_ms": 0})
        # The Resetting Code's counter, from the PW status bytes (DO C4).
        self.assertEqual(tok["puk"], {"retries_left": 3, "retries_low": False, "blocked": False})
        [cert] = tok["certificates"]
        self.assertEqual((cert["id"], cert["slot"], cert["authentication"]), ("auth", "Authentication key", True))
        self.assertEqual(base64.b64decode(cert["der"]), der(self.pki["9a"][0]))
        self.assertEqual(cert["subject_cn"], "张三")
        log = self.card.apdu_log()
        # The authentication key's certificate is occurrence 0 (OpenPGP 3.4 7.2.5).
        self.assertTrue(any(l.startswith("APDU 00 A5 00 04 lc=6") for l in log), log)

    def test_wrong_pin_counts_down_blocks_and_the_resetting_code_unblocks(self):
        for left in (2, 1):
            status, body = self.pin("verify", {"pin": "000000"})
            self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]),
                             (403, "PIN_INCORRECT", left))
            self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], left)
        status, body = self.pin("verify", {"pin": "000000"})
        self.assertEqual((status, body["error"]["code"]), (409, "PIN_LAST_ATTEMPT"))
        status, body = self.pin("verify", {"pin": "000000", "confirm_last_attempt": True})
        self.assertEqual((status, body["error"]["code"]), (423, "PIN_BLOCKED"))
        status, body = self.pin("verify", {"pin": "123456", "confirm_last_attempt": True})
        self.assertEqual((status, body["error"]["code"]), (423, "PIN_BLOCKED"))
        self.assertTrue(self.tokens()["tokens"][0]["pin"]["blocked"])
        status, body = self.pin("unblock", {"puk": "87654321", "new_pin": "pässwört"})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]), (403, "PUK_INCORRECT", 2))
        self.assertEqual(pcsc.read_card_state(self.state)["puk_tries"], 2)
        # The new PIN is UTF-8 and not digits only: OpenPGP allows it.
        status, body = self.pin("unblock", {"puk": "12345678", "new_pin": "pässwört"})
        self.assertEqual(status, 200, body)
        self.assertEqual(pcsc.read_card_state(self.state)["puk_tries"], 3)
        self.assertEqual(self.pin("verify", {"pin": "pässwört"})[0], 200)
        self.assertEqual(self.tokens()["tokens"][0]["pin"]["retries_left"], 3)

    def test_resetting_code_last_attempt_guard(self):
        """Finding 1 (W1): the Resetting Code's last try needs confirm_last_attempt."""
        rrc = lambda: [l for l in self.card.apdu_log() if l.startswith("APDU 00 2C 00 81")]
        for left in (2, 1):
            status, body = self.pin("unblock", {"puk": "87654321", "new_pin": "654321"})
            self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]),
                             (403, "PUK_INCORRECT", left))
        self.assertEqual(self.tokens()["tokens"][0]["puk"]["retries_left"], 1)
        sent = len(rrc())
        status, body = self.pin("unblock", {"puk": "87654321", "new_pin": "654321"})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]), (409, "PUK_LAST_ATTEMPT", 1))
        self.assertEqual((len(rrc()), pcsc.read_card_state(self.state)["puk_tries"]), (sent, 1))
        status, body = self.pin("unblock", {"puk": "87654321", "new_pin": "654321", "confirm_last_attempt": True})
        self.assertEqual((status, body["error"]["code"]), (423, "PUK_BLOCKED"))
        self.assertEqual(self.tokens()["tokens"][0]["puk"], {"retries_left": 0, "retries_low": False, "blocked": True})
        status, body = self.pin("unblock", {"puk": "12345678", "new_pin": "654321", "confirm_last_attempt": True})
        self.assertEqual((status, body["error"]["code"]), (423, "PUK_BLOCKED"))
        self.assertEqual(len(rrc()), sent + 1)

    def test_change_pin_and_formats(self):
        self.assertEqual(self.pin("change", {"old_pin": "123456", "new_pin": "correct horse"})[0], 200)
        self.assertEqual(self.pin("verify", {"pin": "correct horse"})[0], 200)
        status, body = self.pin("change", {"old_pin": "123456", "new_pin": "111111"})
        self.assertEqual(body["error"]["code"], "PIN_INCORRECT")
        for bad in ("12345", "x" * 65):
            status, body = self.pin("verify", {"pin": bad})
            self.assertEqual((status, body["error"]["code"]), (400, "PIN_FORMAT"), bad)

    def test_pin_never_in_the_logs(self):
        self.pin("verify", {"pin": "918273"})
        self.login({"challenge": CHALLENGE, "pin": "918273"})
        self.assertNotIn("918273", self.agent.log_text())
        self.assertNotIn("393138323733", self.agent.log_text().upper().replace(" ", ""))


class LoginP256(OpenPGPCard):
    aut = "9a"

    def test_es256(self):
        self.check_login("ES256")

    def test_no_pin_no_signature(self):
        status, body = self.login({"challenge": CHALLENGE, "pin": "000000"})
        self.assertEqual((status, body["error"]["code"]), (403, "PIN_INCORRECT"))
        self.assertFalse(any(" 88 " in l for l in self.card.apdu_log()))


class LoginP384(OpenPGPCard):
    aut = "9d"

    def test_es384(self):
        self.check_login("ES384")


class LoginRSA(OpenPGPCard):
    aut = "9c"

    def test_rs256(self):
        self.check_login("RS256")

    def test_opensc_signs_with_the_rsa_authentication_key(self):
        self.opensc_signs("SHA256-RSA-PKCS")

    def test_ps256_is_not_offered_by_the_card(self):
        status, body = self.login({"challenge": CHALLENGE, "pin": "123456", "algorithm": "PS256"})
        self.assertEqual(body["error"]["code"], "TOKEN_NOT_SUPPORTED", body)


class MalformedCertificate(OpenPGPCard):
    """A 7F21 with an impossible length, and one cut in half: a clean
    CARD_DATA_INVALID on the reader, never a crash (security.md CARD-06)."""

    def test_impossible_length_and_truncation(self):
        for faults in (("bad-tlv",), ("truncate",)):
            self.card.remove()
            self.card = pcsc.VirtualCard(self.pcscd, self.state, faults).insert()
            body = self.tokens()
            [reader] = [r for r in body["readers"] if r["state"] == "present"]
            self.assertEqual(reader["error"]["code"], "CARD_DATA_INVALID", faults)
            self.assertEqual(body["tokens"], [])
            self.assertTrue(self.agent.alive())


class IndependentClients(OpenPGPCard):
    def test_gpg_card_status_through_scdaemon(self):
        home = tempfile.mkdtemp(prefix="gpg-", dir="/tmp")  # short: it holds the agent's sockets
        os.chmod(home, 0o700)
        with open(os.path.join(home, "scdaemon.conf"), "w") as f:
            f.write("disable-ccid\npcsc-driver %s\nreader-port %s\n" % (PCSCLITE, pcsc.READER))
        env = dict(os.environ, GNUPGHOME=home)
        pids = []
        try:
            r = subprocess.run(["gpg", "--batch", "--no-tty", "--card-status"], env=env, capture_output=True,
                               text=True, timeout=60)
            for cmd in ("getinfo pid", "scd getinfo pid"):
                out = subprocess.run(["gpg-connect-agent", "--no-autostart", cmd, "/bye"], env=env,
                                     capture_output=True, text=True, timeout=30).stdout
                pids += [int(p) for p in re.findall(r"^D (\d+)", out, re.M)]
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"Application ID \.*: D276000124010304FFFE%s0000" % SERIAL)
            self.assertRegex(r.stdout, r"Serial number \.*: %s" % SERIAL)
            self.assertRegex(r.stdout, r"Version \.*: 3\.4")
            self.assertRegex(r.stdout, r"Max\. PIN lengths \.*: 64 127 127")
            self.assertRegex(r.stdout, r"PIN retry counter : 3 3 3")
            self.assertRegex(r.stdout, r"Key attributes \.*: rsa2048 rsa2048 nistp256")
            # GnuPG groups a fingerprint by 4 digits, with two spaces in the middle.
            spaced = lambda h: " ".join(h[i:i + 4] for i in range(0, 20, 4)) + "  " + " ".join(  # noqa: E731
                h[i:i + 4] for i in range(20, 40, 4))
            for label, key in (("Signature key", "sig"), ("Encryption key", "dec"), ("Authentication key", "aut")):
                self.assertRegex(r.stdout, r"%s ?\.*: %s" % (label, spaced(FPRS[key].upper())))
        finally:
            for pid in reversed(pids):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while pids and time.monotonic() < deadline:
                alive = [p for p in pids if os.path.exists("/proc/%d" % p)]
                if not alive:
                    break
                time.sleep(0.1)
            shutil.rmtree(home, ignore_errors=True)
        # The agent reads the same card right after.
        self.assertEqual(self.tokens()["tokens"][0]["id"], TOKEN)

    def test_opensc_signs_with_the_authentication_key(self):
        self.opensc_signs("ECDSA-SHA256", ["--signature-format", "openssl"])

    def test_opensc_reads_the_same_certificate(self):
        out_file = os.path.join(self.dir, "opensc-cert.der")
        env = dict(os.environ, OPENSC_DRIVER="openpgp")
        listing = subprocess.run(["pkcs15-tool", "--list-certificates"], env=env, capture_output=True, text=True,
                                 timeout=60)
        self.assertEqual(listing.returncode, 0, listing.stderr)
        self.assertIn("AUT certificate", listing.stdout)
        cert_id = re.search(r"ID\s*:\s*(\w+)", listing.stdout).group(1)
        subprocess.run(["pkcs15-tool", "--read-certificate", cert_id, "-o", out_file], env=env, check=True,
                       capture_output=True, timeout=60)
        with open(out_file, "rb") as f:
            got = f.read()
        if got.startswith(b"-----"):
            got = der(got.decode())
        status, _, body = self.agent.get_json("/api/v1/tokens")
        agent_der = base64.b64decode(body["tokens"][0]["certificates"][0]["der"])
        self.assertEqual(got, agent_der)
        self.assertEqual(got, der(self.pki["9a"][0]))


if __name__ == "__main__":
    harness.main()
