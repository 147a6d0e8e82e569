"""The PKCS#11 backend (issue 7): vendor modules loaded with dlopen.

SoftHSM2 stands for a vendor's module: a token initialised here with
softhsm2-util and pkcs11-tool, holding the test PKI's P-256, RSA-2048 and
P-384 keys and certificates. No pcscd runs for it (the private namespace
hides the machine's), so this also proves the PKCS#11 tokens work without
PC/SC. Then OpenSC's own opensc-pkcs11.so over the virtual PIV card: the
same card through two backends, shown once, with the same certificates and
PIN counter. Every login token is checked by ukey-verify and by openssl.
Last, tests/p11mock (a module steered by files) for what neither does on
cue: a module without C_WaitForSlotEvent, a locked PIN, a call that never
returns."""
import base64
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
from agent import run_tool  # noqa: E402
from test_login import CHALLENGE, PORTAL, der_from_raw  # noqa: E402
from test_tokens import EventStream  # noqa: E402

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
P11MOCK = os.environ.get("UKEY_P11MOCK", "")
OPENSC = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
NOT_PKCS11 = "/lib/x86_64-linux-gnu/libz.so.1"
MISSING = "/nonexistent/vendor-pkcs11.so"
PIN, SO_PIN = "1234abcd", "87654321"
# CKA_ID per PKI slot, as the token and the API show them.
IDS = {"9a": "01", "9c": "02", "9d": "03"}


class SoftHsm:
    """A SoftHSM2 token store in a temporary directory."""

    def __init__(self, d):
        self.dir = d
        self.conf = os.path.join(d, "softhsm2.conf")
        os.makedirs(os.path.join(d, "tokens"))
        with open(self.conf, "w") as f:
            f.write("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
                    % os.path.join(d, "tokens"))
        self.env = dict(os.environ, SOFTHSM2_CONF=self.conf)

    def tool(self, *args):
        return run_tool(*args, env=self.env)

    def init_token(self, label):
        self.tool("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN)

    def delete_token(self, label):
        self.tool("softhsm2-util", "--delete-token", "--token", label)

    def add_key(self, label, key_id, key_pem, cert_pem):
        key = os.path.join(self.dir, "key.pem")
        der = os.path.join(self.dir, "cert.der")
        with open(key, "w") as f:
            f.write(key_pem)
        run_tool("openssl", "x509", "-outform", "DER", "-out", der, input=cert_pem)
        self.tool("softhsm2-util", "--import", key, "--token", label, "--label", "key" + key_id, "--id", key_id,
                  "--pin", PIN)
        self.tool("pkcs11-tool", "--module", SOFTHSM, "--token-label", label, "--login", "--pin", PIN,
                  "--write-object", der, "--type", "cert", "--id", key_id, "--label", "cert" + key_id)
        os.unlink(key)


class Base(unittest.TestCase):
    def login(self, body):
        status, _, raw = self.agent.request("POST", "/api/v1/login",
                                            {"Content-Type": "application/json", "Origin": PORTAL},
                                            body=json.dumps(dict({"challenge": CHALLENGE}, **body)))
        return status, json.loads(raw)

    def pin(self, token_id, op, body):
        status, _, raw = self.agent.request("POST", "/api/v1/tokens/%s/pin/%s" % (token_id, op),
                                            {"Content-Type": "application/json"}, body=json.dumps(body))
        return status, json.loads(raw)

    def tokens(self):
        status, _, body = self.agent.get_json("/api/v1/tokens")
        self.assertEqual(status, 200, body)
        return body

    def verified(self, token, slot):
        """ukey-verify and openssl both accept the token, with the PKI slot's certificate."""
        path = os.path.join(self.dir, "token.json")
        with open(path, "w") as f:
            json.dump(token, f)
        r = run_tool(os.path.join(os.path.dirname(harness.AGENT), "ukey-verify"), "--token", path, "--challenge",
                     CHALLENGE, "--origin", PORTAL, "--ca-file", os.path.join(self.dir, "ca.pem"), check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        pem_body = "".join(self.pki[slot][0].strip().splitlines()[1:-1])
        self.assertEqual(token["unverifiedCertificate"], pem_body)
        alg = token["algorithm"]
        sig = base64.b64decode(token["signature"])
        if alg.startswith("ES"):
            sig = der_from_raw(sig)
        import hashlib
        h = hashlib.sha384 if alg.endswith("384") else hashlib.sha256
        files = {"signed": h(PORTAL.encode()).digest() + h(CHALLENGE.encode()).digest(), "sig": sig}
        for name, data in files.items():
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(data)
        with open(os.path.join(self.dir, "pub.pem"), "w") as f:
            f.write(run_tool("openssl", "x509", "-noout", "-pubkey", input=self.pki[slot][0]).stdout)
        opts = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"] if alg == "PS256" else []
        r = run_tool("openssl", "dgst", "-sha384" if alg.endswith("384") else "-sha256", *opts, "-verify",
                     os.path.join(self.dir, "pub.pem"), "-signature", os.path.join(self.dir, "sig"),
                     os.path.join(self.dir, "signed"), check=False)
        self.assertIn("Verified OK", r.stdout)


class SoftHsmToken(Base):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ukey-p11-")
        cls.pki = pcsc.make_pki(cls.dir)
        cls.hsm = SoftHsm(cls.dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        # A fresh token per test (PIN changes and the like do not leak).
        self.label = "UKey " + self.id().rsplit(".", 1)[1][5:30]
        self.hsm.init_token(self.label)
        for slot, key_id in IDS.items():
            self.hsm.add_key(self.label, key_id, self.pki[slot][1], self.pki[slot][0])
        self.agent = harness.Agent(args=["--allow-origin", PORTAL, "--pkcs11-module", SOFTHSM,
                                         "--pkcs11-module", MISSING, "--pkcs11-module", NOT_PKCS11],
                                   config={"pin_entry": "page"}, env={"SOFTHSM2_CONF": self.hsm.conf}).start()

    def tearDown(self):
        self.agent.cleanup()
        self.hsm.delete_token(self.label)

    def token(self):
        tokens = [t for t in self.tokens()["tokens"] if t["label"] == self.label]
        self.assertEqual(len(tokens), 1)
        return tokens[0]

    def test_listing_and_the_modules_that_failed(self):
        body = self.tokens()
        self.assertFalse(body["pcsc"]["available"])
        modules = {m["path"]: m for m in body["pkcs11"]}
        self.assertTrue(modules[SOFTHSM]["loaded"])
        self.assertEqual(modules[MISSING]["error"]["code"], "MODULE_FAILED")
        self.assertIn("No such file", modules[MISSING]["error"]["detail"])
        self.assertIn("not a PKCS#11 module", modules[NOT_PKCS11]["error"]["detail"])
        t = self.token()
        self.assertTrue(t["id"].startswith("p11-"))
        self.assertEqual((t["type"], t["backend"], t["module"]), ("PKCS#11", "pkcs11", SOFTHSM))
        self.assertEqual({c["id"] for c in t["certificates"]}, set(IDS.values()))
        self.assertEqual(sum(c["authentication"] for c in t["certificates"]), 1)
        self.assertEqual(t["pin"], {"retries_left": None, "retries_low": False, "blocked": False, "pin_pad": False,
                                    "digits_only": False, "min_length": 4, "max_length": 64, "retry_after_ms": 0})
        # The SO PIN stands in for the PUK: flags only, no count.
        self.assertEqual(t["puk"], {"retries_left": None, "retries_low": False, "blocked": False})
        # The same id after a restart: it comes from the token, not the slot.
        first = t["id"]
        self.agent.stop()
        self.agent.start()
        self.assertEqual(self.token()["id"], first)
        # doctor names the broken module and still lists the token.
        r = run_tool(harness.AGENT, "doctor", "--json", "--pkcs11-module", SOFTHSM, "--pkcs11-module", MISSING,
                     env=dict(self.agent.env), check=False)
        checks = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
        self.assertEqual(checks["pkcs11.modules"]["status"], "fail")
        self.assertIn(MISSING, checks["pkcs11.modules"]["detail"])
        self.assertEqual(checks["pcsc.service"]["status"], "warn")
        r = run_tool(harness.AGENT, "tokens", "--pkcs11-module", SOFTHSM, env=dict(self.agent.env), check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(first, r.stdout)

    def test_login_with_each_key_kind(self):
        tid = self.token()["id"]
        for extra, slot, alg in (({}, None, None), ({"certificate": "01"}, "9a", "ES256"),
                                 ({"certificate": "02"}, "9c", "RS256"),
                                 ({"certificate": "02", "algorithm": "PS256"}, "9c", "PS256"),
                                 ({"certificate": "03"}, "9d", "ES384")):
            status, body = self.login(dict({"pin": PIN, "token": tid}, **extra))
            self.assertEqual(status, 200, body)
            if slot is None:  # the authentication certificate, whichever the token lists first
                slot = {self.pki[s][0].strip().splitlines()[1]: s for s in IDS}[
                    base64.b64encode(base64.b64decode(body["unverifiedCertificate"]))[:64].decode()]
                alg = body["algorithm"]
            self.assertEqual(body["algorithm"], alg)
            self.verified(body, slot)

    def test_wrong_pin_change_and_unblock_with_the_so_pin(self):
        tid = self.token()["id"]
        status, body = self.login({"pin": "wrong-pin", "token": tid})
        self.assertEqual((status, body["error"]["code"]), (403, "PIN_INCORRECT"), body)
        # No count, but the token says a wrong PIN came since the last right one.
        self.assertTrue(self.token()["pin"]["retries_low"])
        self.assertEqual(self.login({"pin": "123", "token": tid})[1]["error"]["code"], "PIN_FORMAT")
        self.assertEqual(self.pin(tid, "verify", {"pin": PIN})[0], 200)
        self.assertFalse(self.token()["pin"]["retries_low"])
        status, body = self.pin(tid, "change", {"old_pin": PIN, "new_pin": "new-pin-1"})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.pin(tid, "verify", {"pin": PIN})[1]["error"]["code"], "PIN_INCORRECT")
        status, body = self.login({"pin": "new-pin-1", "token": tid, "certificate": "01"})
        self.assertEqual(status, 200, body)
        self.verified(body, "9a")
        # PKCS#11 has no PUK: the security officer's PIN stands in for it.
        status, body = self.pin(tid, "unblock", {"puk": "00000000", "new_pin": "reset-pin"})
        self.assertEqual((status, body["error"]["code"]), (403, "PUK_INCORRECT"), body)
        self.assertEqual(self.pin(tid, "unblock", {"puk": SO_PIN, "new_pin": "reset-pin"})[0], 200)
        self.assertEqual(self.pin(tid, "verify", {"pin": "reset-pin"})[0], 200)
        self.assertEqual(self.pin(tid, "verify", {"pin": "new-pin-1"})[1]["error"]["code"], "PIN_INCORRECT")


# OpenSC's view of a card that the PIV driver reads too, heard but not told.
QUIET = r'event %s in "PKCS#11 #1 opensc-pkcs11.so slot .*": told by the card\'s PC/SC reader$'


class OpenScOverPiv(Base, pcsc.CardCase):
    """OpenSC's PKCS#11 module and the PIV driver reach the same virtual card."""
    agent_args = ("--allow-origin", PORTAL, "--pkcs11-module", OPENSC)
    agent_config = {"pin_entry": "page"}

    # A card pulled while OpenSC 0.23 reads it can deadlock OpenSC for the
    # rest of the process (the agent then leaves the module aside, see
    # vendorlib.c): each test has an agent of its own, and pulls a card only
    # once the agent has read it.
    def setUp(self):
        self.assertIn(self.agent.stop(), (None, 0), self.agent.log_text()[-3000:])
        self.agent.start()
        super().setUp()

    def settled(self):
        """Waits until the reminders have looked at every card inserted: the
        agent's last read through OpenSC after an insertion."""
        inserted = self.agent.log_count(r"event token-inserted$")
        self.assertTrue(self.agent.wait_log(r"reminders: checked 3 certificate\(s\)$", inserted),
                        self.agent.log_text())

    def tearDown(self):
        self.settled()
        super().tearDown()

    def both_views(self):
        """The PIV token and its PKCS#11 twin's id, once OpenSC has seen the card."""
        deadline = time.monotonic() + 20
        while True:
            body = self.tokens()
            piv = [t for t in body["tokens"] if t["type"] == "PIV"]
            if piv and piv[0].get("also_via") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(len(body["tokens"]), 1, body)  # shown once
        t = body["tokens"][0]
        self.assertEqual(t["backend"], "pcsc")
        self.assertEqual(len(t.get("also_via", ())), 1, (body, self.agent.log_text()[-3000:]))
        self.assertEqual(t["also_via"][0]["module"], OPENSC)
        self.assertTrue(t["also_via"][0]["id"].startswith("p11-"))
        readers = {r["name"]: r for r in body["readers"]}
        self.assertEqual(readers[t["also_via"][0]["reader"]]["token"], t["also_via"][0]["id"])
        return t, t["also_via"][0]["id"]

    def test_same_card_same_certificates_through_both_backends(self):
        piv, p11 = self.both_views()
        # The token without a name is the PC/SC one: never the twin.
        status, body = self.login({"pin": "123456"})
        self.assertEqual(status, 200, body)
        self.verified(body, "9a")
        # Through OpenSC's module, certificate by certificate: the PIV certificates.
        for cert, slot in (("01", "9a"), ("02", "9c"), ("03", "9d")):
            status, body = self.login({"pin": "123456", "token": p11, "certificate": cert})
            self.assertEqual(status, 200, (cert, body))
            self.verified(body, slot)
        self.assertEqual(sum(line.startswith("APDU 00 87") for line in self.card.apdu_log()), 4)

    def test_wrong_pins_through_opensc_block_the_card_for_both(self):
        piv, p11 = self.both_views()
        for left in (2, 1):
            status, body = self.login({"pin": "000000", "token": p11})
            self.assertEqual((status, body["error"]["code"]), (403, "PIN_INCORRECT"), body)
            self.assertEqual(self.tokens()["tokens"][0]["pin"]["retries_left"], left)
        # OpenSC says CKF_USER_PIN_FINAL_TRY: the last try needs the caller's yes.
        status, body = self.login({"pin": "000000", "token": p11})
        self.assertEqual(body["error"]["code"], "PIN_LAST_ATTEMPT", body)
        status, body = self.login({"pin": "000000", "token": p11, "confirm_last_attempt": True})
        self.assertIn(body["error"]["code"], ("PIN_INCORRECT", "PIN_BLOCKED"), body)
        self.assertTrue(self.tokens()["tokens"][0]["pin"]["blocked"])
        status, body = self.login({"pin": "123456", "token": p11, "confirm_last_attempt": True})
        self.assertEqual((status, body["error"]["code"]), (423, "PIN_BLOCKED"), body)
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 0)

    def test_card_coming_and_going_through_c_waitforslotevent(self):
        # OpenSC's module waits in C_WaitForSlotEvent and its slot sees the
        # card come and go beside the PC/SC reader; the page hears of it once.
        piv, p11 = self.both_views()
        tab = EventStream(self.agent)
        try:
            for event, count in (("token-removed", 1), ("token-inserted", 2)):
                quiet = QUIET % event
                seen = self.agent.log_count(quiet)
                if event == "token-removed":
                    self.settled()
                    self.card.remove()
                else:
                    self.card.insert()
                self.assertTrue(self.agent.wait_log(quiet, seen + 1), self.agent.log_text())
                events = tab.wait_for(count, timeout=20)
                self.assertEqual(events[count - 1][0], event, events)
                self.assertEqual(events[count - 1][1]["token"], piv["id"], events)
                self.assertFalse(events[count - 1][1]["reader"].startswith("PKCS#11"), events)
            time.sleep(1)
            self.assertEqual(len(tab.events), 2, tab.events)
        finally:
            tab.close()
        # The agent stops cleanly with a thread inside C_WaitForSlotEvent.
        self.settled()
        self.assertEqual(self.agent.stop(), 0)
        self.assertNotIn("did not stop", self.agent.log_text())


class MockModule(Base):
    """tests/p11mock beside SoftHSM2: polling, a locked PIN, a stuck module."""

    def setUp(self):
        self.assertTrue(os.path.exists(P11MOCK), "UKEY_P11MOCK must name the built p11mock module")
        self.dir = tempfile.mkdtemp(prefix="ukey-p11mock-")
        self.hsm = SoftHsm(os.path.join(self.dir, "hsm"))
        self.hsm.init_token("Beside")
        self.agent = harness.Agent(args=["--pkcs11-module", P11MOCK, "--pkcs11-module", SOFTHSM],
                                   env={"UKEY_P11MOCK_DIR": self.dir, "SOFTHSM2_CONF": self.hsm.conf}).start()
        # The mock's watcher has had its first look (what is there then is
        # not news) and polls from now on.
        self.assertTrue(self.agent.wait_log(r"p11mock\.so: C_WaitForSlotEvent: \S+: polling$", 1))

    def tearDown(self):
        self.agent.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def touch(self, name, present=True):
        path = os.path.join(self.dir, name)
        if present:
            open(path, "w").close()
        elif os.path.exists(path):
            os.unlink(path)

    def labels(self):
        return sorted(t["label"] for t in self.tokens()["tokens"])

    def test_a_module_without_slot_events_is_polled(self):
        tab = EventStream(self.agent)
        try:
            self.touch("present")
            events = tab.wait_for(1, timeout=20)
            self.assertEqual([e for e, _ in events], ["token-inserted"], events)
            self.assertTrue(events[0][1]["reader"].startswith("PKCS#11 #1 p11mock.so slot 7: Mock slot"))
            self.assertEqual(self.labels(), ["Beside", "Mock UKey"])
            self.touch("present", False)
            events = tab.wait_for(2, timeout=20)
            self.assertEqual(events[1], ("token-removed", events[0][1]), events)
            self.assertEqual(self.labels(), ["Beside"])
        finally:
            tab.close()

    def test_a_locked_pin(self):
        self.touch("present")
        self.touch("locked")
        t = [t for t in self.tokens()["tokens"] if t["label"] == "Mock UKey"][0]
        self.assertEqual((t["pin"]["blocked"], t["pin"]["retries_left"]), (True, 0))
        status, body = self.pin(t["id"], "verify", {"pin": "123456"})
        self.assertEqual((status, body["error"]["code"]), (423, "PIN_BLOCKED"), body)
        self.touch("locked", False)
        status, body = self.pin(t["id"], "verify", {"pin": "123456"})
        # PKCS#11 tells no counter: none is made up.
        self.assertEqual((status, body["error"]["code"], body["error"].get("retries_left")),
                         (403, "PIN_INCORRECT", None), body)

    def test_the_so_pin_last_attempt_guard(self):
        """Finding 1 (W1): the SO PIN (the API's PUK) has the PIN's last-try
        rule, from CKF_SO_PIN_FINAL_TRY / CKF_SO_PIN_LOCKED."""
        self.touch("present")
        t = [t for t in self.tokens()["tokens"] if t["label"] == "Mock UKey"][0]
        self.assertEqual(t["puk"], {"retries_left": None, "retries_low": False, "blocked": False})
        self.touch("so-final-try")
        t = [t for t in self.tokens()["tokens"] if t["label"] == "Mock UKey"][0]
        self.assertEqual(t["puk"], {"retries_left": 1, "retries_low": False, "blocked": False})
        def logins():
            """The mock's count of SO logins (C_Login with CKU_SO)."""
            try:
                with open(os.path.join(self.dir, "logins")) as f:
                    return f.read().count("C_Login 0")
            except FileNotFoundError:
                return 0
        status, body = self.pin(t["id"], "unblock", {"puk": "00000000", "new_pin": "reset-pin"})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]), (409, "PUK_LAST_ATTEMPT", 1))
        self.assertEqual(logins(), 0, "no C_Login as SO may reach the module")
        status, body = self.pin(t["id"], "unblock", {"puk": "00000000", "new_pin": "reset-pin",
                                                     "confirm_last_attempt": True})
        self.assertEqual((status, body["error"]["code"]), (403, "PUK_INCORRECT"), body)
        self.assertEqual(logins(), 1)
        self.touch("so-locked")
        t = [t for t in self.tokens()["tokens"] if t["label"] == "Mock UKey"][0]
        self.assertEqual((t["puk"]["retries_left"], t["puk"]["blocked"]), (0, True))
        status, body = self.pin(t["id"], "unblock", {"puk": "00000000", "new_pin": "reset-pin",
                                                     "confirm_last_attempt": True})
        self.assertEqual((status, body["error"]["code"]), (423, "PUK_BLOCKED"), body)
        self.assertEqual(logins(), 1)

    def in_background(self, fn):
        import threading
        t = threading.Thread(target=lambda: self.swallow(fn), daemon=True)
        t.start()
        return t

    @staticmethod
    def swallow(fn):
        try:
            fn()
        except Exception:  # the caller that got stuck times out: expected
            pass

    def test_a_pin_typed_on_the_token_is_not_a_stuck_module(self):
        self.touch("present")
        self.touch("pinpad")
        t = [t for t in self.tokens()["tokens"] if t["label"] == "Mock UKey"][0]
        self.assertTrue(t["pin"]["pin_pad"])
        self.touch("typing")
        answers = []
        typing = self.in_background(lambda: answers.append(self.agent.request(
            "POST", "/api/v1/tokens/%s/pin/verify" % t["id"], {"Content-Type": "application/json"}, body="{}",
            timeout=60)))
        # Longer than a stuck call may take: the module is busy, not stuck
        # (whoever waited out its 5 s turn would have marked it stuck).
        time.sleep(7)
        body = self.tokens()
        self.assertNotIn("error", [m for m in body["pkcs11"] if m["path"] == P11MOCK][0])
        slot = [r for r in body["readers"] if r.get("module") == P11MOCK][0]
        self.assertEqual((slot["state"], slot["error"]["code"]), ("in_use", "TOKEN_BUSY"), slot)
        self.assertEqual([t["label"] for t in body["tokens"]], ["Beside"])
        status, busy = self.pin(t["id"], "verify", {"pin": "123456"})
        self.assertEqual((status, busy["error"]["code"]), (409, "TOKEN_BUSY"), busy)
        self.assertNotIn("error", [m for m in self.tokens()["pkcs11"] if m["path"] == P11MOCK][0])
        self.touch("typing", False)
        typing.join(30)
        self.assertEqual(answers[0][0], 200, answers)
        self.assertEqual(self.labels(), ["Beside", "Mock UKey"])

    def test_a_module_stuck_in_a_call_is_left_aside(self):
        self.touch("present")
        self.assertEqual(self.labels(), ["Beside", "Mock UKey"])
        self.touch("hang")
        # Whoever calls first (a listing or the slot watcher) stays inside
        # the module; the next one waits out the module's 5 s turn and marks
        # it stuck; after that nobody waits for it.
        self.in_background(self.tokens)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            mock = [m for m in self.tokens()["pkcs11"] if m["path"] == P11MOCK][0]
            if "error" in mock:
                break
        self.assertEqual(mock["error"]["code"], "MODULE_FAILED")
        self.assertIn("stopped answering", mock["error"]["detail"])
        self.assertIs(mock.get("stuck"), True)
        started = time.monotonic()
        self.assertEqual(self.labels(), ["Beside"])  # the other module goes on
        self.assertLess(time.monotonic() - started, 5)  # not waiting out the stuck module's 5 s turn
        self.assertEqual(self.agent.get_json("/api/v1/status")[0], 200)
        r = run_tool(harness.AGENT, "doctor", "--json", "--pkcs11-module", P11MOCK, env=dict(self.agent.env),
                     check=False, timeout=60)
        check = {c["id"]: c for c in json.loads(r.stdout)["checks"]}["pkcs11.modules"]
        self.assertEqual(check["status"], "fail")
        # Reinstalling would not mend it: the fix says to restart the agent.
        self.assertIn("restart the agent", check["fix"])
        self.assertNotIn("Reinstall", check["fix"])
        # Back once the call returns.
        self.touch("hang", False)
        deadline = time.monotonic() + 20
        while self.labels() != ["Beside", "Mock UKey"] and time.monotonic() < deadline:
            time.sleep(0.5)
        self.assertEqual(self.labels(), ["Beside", "Mock UKey"])
        mock = [m for m in self.tokens()["pkcs11"] if m["path"] == P11MOCK][0]
        self.assertNotIn("error", mock)
        self.assertNotIn("stuck", mock)
        # Stuck again at the end: the agent still stops, cleanly and in time.
        self.touch("hang")
        self.in_background(self.tokens)
        time.sleep(1)
        started = time.monotonic()
        self.assertEqual(self.agent.stop(timeout=60), 0)
        # The stuck module is given its 5 s turn and its watcher 2 s, no more.
        self.assertLess(time.monotonic() - started, 30)

if __name__ == "__main__":
    harness.main()
