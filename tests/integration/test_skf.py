"""The SKF backend (issue 14): vendor GM/T 0016 libraries loaded with dlopen.

tests/skf/softskf stands for a vendor's library, built twice: softskf.so
with the spec's ABI (32-bit ULONG) and softskf64.so with the LP64 vendor
headers' (64-bit ULONG); the agent must find out which on its own. Its
device SOFTSKF-SM2-0001 holds an SM2 container (signing and encryption
certificates) and an RSA container, made by sm2pki.py; its state file
steers insertion, removal and faults (tests/skf/README.md). No pcscd runs
(the private namespace hides the machine's): SKF tokens need no PC/SC.

Every RSA and SM2 login token is checked by ukey-verify and by openssl
(SM2 with the default distinguishing ID)."""
import base64
import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
import sm2pki  # noqa: E402
from agent import run_tool  # noqa: E402
from test_login import CHALLENGE, PORTAL, der_from_raw  # noqa: E402
from test_tokens import EventStream  # noqa: E402

SOFTSKF = os.environ.get("UKEY_SOFTSKF", "")
SOFTSKF64 = os.environ.get("UKEY_SOFTSKF64", "")
NOT_SKF = "/lib/x86_64-linux-gnu/libz.so.1"
MISSING = "/nonexistent/vendor-skf.so"
PIN, ADMIN = "123456", "12345678"
DEVICE = "SOFTSKF-SM2-0001"
SM2_ID = "1234567812345678"  # GM/T 0009's default distinguishing ID


class Base(unittest.TestCase):
    libs = [SOFTSKF]
    extra_args = []
    agent_config = {"pin_entry": "page"}

    @classmethod
    def setUpClass(cls):
        for lib in cls.libs:
            assert os.path.exists(lib), "UKEY_SOFTSKF and UKEY_SOFTSKF64 must name the built softskf libraries"
        cls.dir = tempfile.mkdtemp(prefix="ukey-skf-")
        cls.pki = sm2pki.make_sm2_pki(os.path.join(cls.dir, "pki"), check=False)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        # A fresh device per test: PIN counters do not leak between tests.
        self.state = os.path.join(self.dir, "state.json")
        sm2pki.write_skf_state(self.state, self.pki, **self.device_args())
        self.agent = self.start_agent()

    def start_agent(self):
        args = ["--allow-origin", PORTAL]
        for lib in self.libs + self.extra_args:
            args += ["--skf-module", lib]
        return harness.Agent(args=args, config=self.agent_config, env={"SOFTSKF_STATE": self.state}).start()

    def tearDown(self):
        self.agent.cleanup()

    def device_args(self):
        return {}

    def tokens(self):
        status, _, body = self.agent.get_json("/api/v1/tokens")
        self.assertEqual(status, 200, body)
        return body

    def token(self, lib=None):
        found = [t for t in self.tokens()["tokens"] if t["backend"] == "skf" and t["module"] == (lib or self.libs[0])]
        self.assertEqual(len(found), 1, found)
        return found[0]

    def pin(self, token_id, op, body):
        status, _, raw = self.agent.request("POST", "/api/v1/tokens/%s/pin/%s" % (token_id, op),
                                            {"Content-Type": "application/json"}, body=json.dumps(body))
        return status, json.loads(raw)

    def login(self, body):
        status, _, raw = self.agent.request("POST", "/api/v1/login",
                                            {"Content-Type": "application/json", "Origin": PORTAL},
                                            body=json.dumps(dict({"challenge": CHALLENGE}, **body)))
        return status, json.loads(raw)

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return path

    def pem_body(self, path):
        with open(path) as f:
            return "".join(f.read().strip().splitlines()[1:-1])

    def ukey_verify(self, token, anchors):
        path = self.write("token.json", json.dumps(token))
        r = run_tool(os.path.join(os.path.dirname(harness.AGENT), "ukey-verify"), "--token", path, "--challenge",
                     CHALLENGE, "--origin", PORTAL, "--ca-file", anchors, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def rsa_verified(self, token):
        """ukey-verify and openssl accept an RS256 token from the RSA container."""
        self.assertEqual(token["algorithm"], "RS256")
        self.assertEqual(token["unverifiedCertificate"], self.pem_body(self.pki.rsa_user))
        with open(self.pki.rsa_inter) as a, open(self.pki.rsa_root) as b:
            anchors = self.write("rsa-anchors.pem", a.read() + b.read())
        self.ukey_verify(token, anchors)
        h = hashlib.sha256
        signed = self.write("signed", h(PORTAL.encode()).digest() + h(CHALLENGE.encode()).digest())
        sig = self.write("sig", base64.b64decode(token["signature"]))
        pub = self.write("pub.pem", run_tool("openssl", "x509", "-noout", "-pubkey", "-in", self.pki.rsa_user).stdout)
        r = run_tool("openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, signed, check=False)
        self.assertIn("Verified OK", r.stdout, r.stderr)

    def sm2_listed(self, token):
        """The SM2 signing certificate is described like any other."""
        c0s = [c for c in token["certificates"] if c["id"] == "c0s"][0]
        self.assertNotIn("error", c0s)
        self.assertEqual((c0s["key_type"], c0s["signature_algorithm"], c0s["authentication"]),
                         ("SM2", "SM2-with-SM3", True))

    def sm2_verified(self, token):
        """ukey-verify and openssl (with the default distinguishing ID) accept
        an SM2-SM3 token from the SM2 container."""
        self.assertEqual(token["algorithm"], "SM2-SM3")
        self.assertEqual(token["unverifiedCertificate"], self.pem_body(self.pki.user))
        with open(self.pki.inter) as a, open(self.pki.root) as b:
            anchors = self.write("sm2-anchors.pem", a.read() + b.read())
        self.ukey_verify(token, anchors)
        raw = base64.b64decode(token["signature"])
        self.assertEqual(len(raw), 64)
        h = lambda data: hashlib.new("sm3", data).digest()  # noqa: E731
        signed = self.write("signed", h(PORTAL.encode()) + h(CHALLENGE.encode()))
        sig = self.write("sig", der_from_raw(raw))
        pub = self.write("pub.pem", run_tool("openssl", "x509", "-noout", "-pubkey", "-in", self.pki.user).stdout)
        r = run_tool("openssl", "dgst", "-sm3", "-verify", pub, "-sigopt", "distid:" + SM2_ID, "-signature", sig,
                     signed, check=False)
        self.assertIn("Verified OK", r.stdout, r.stderr)
        r = run_tool("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3", "-in",
                     signed, "-sigfile", sig, "-pkeyopt", "distid:" + SM2_ID, check=False)
        self.assertIn("Signature Verified Successfully", r.stdout, r.stderr)


class Listing(Base):
    """One device, its certificates and PIN counter; libraries that do not load."""
    extra_args = [MISSING, NOT_SKF]

    def test_the_device_is_a_token_with_its_certificates(self):
        body = self.tokens()
        reader = [r for r in body["readers"] if r.get("module") == SOFTSKF][0]
        self.assertEqual((reader["name"], reader["state"]), ("SKF #1 softskf.so device " + DEVICE, "present"))
        t = self.token()
        self.assertEqual(reader["token"], t["id"])
        self.assertTrue(t["id"].startswith("skf-"))
        self.assertEqual((t["type"], t["label"], t["serial"]), ("SKF", "SM2 demo token", "SKF0001"))
        self.assertEqual((t["pin"]["retries_left"], t["pin"]["blocked"], t["pin"]["min_length"],
                          t["pin"]["max_length"], t["pin"]["digits_only"]), (6, False, 6, 16, False))
        certs = {c["id"]: c for c in t["certificates"]}
        self.assertEqual(sorted(certs), ["c0e", "c0s", "c1s"])
        self.assertEqual((certs["c0s"]["container"], certs["c0s"]["slot"]), ("SM2-CONTAINER", "SKF signing"))
        self.assertEqual((certs["c0e"]["container"], certs["c0e"]["slot"]), ("SM2-CONTAINER", "SKF encryption"))
        self.assertEqual((certs["c1s"]["container"], certs["c1s"]["slot"]), ("RSA-CONTAINER", "SKF signing"))
        # The login certificate: the first usable container's signing one, SM2 before RSA.
        self.assertEqual([c["id"] for c in t["certificates"] if c["authentication"]], ["c0s"])
        self.assertEqual(certs["c1s"]["der"], self.pem_body(self.pki.rsa_user))
        # The same id at the next listing (cached, then read again after a restart).
        self.assertEqual(self.token()["id"], t["id"])

    def test_libraries_are_reported_with_their_abi(self):
        skf = {m["path"]: m for m in self.tokens()["skf"]}
        self.assertEqual(list(skf), [SOFTSKF, MISSING, NOT_SKF])
        self.assertEqual((skf[SOFTSKF]["loaded"], skf[SOFTSKF]["abi"], skf[SOFTSKF]["events"]),
                         (True, "ulong32", "wait"))
        self.assertNotIn("error", skf[SOFTSKF])
        self.assertEqual((skf[MISSING]["loaded"], skf[MISSING]["error"]["code"]), (False, "MODULE_FAILED"))
        self.assertIn("cannot be loaded", skf[MISSING]["error"]["detail"])
        self.assertIn("no SKF_EnumDev", skf[NOT_SKF]["error"]["detail"])
        for lang in ("zh-CN", "en"):
            self.assertTrue(skf[MISSING]["error"][lang])

    def test_doctor_names_each_library_and_its_abi(self):
        r = run_tool(harness.AGENT, "doctor", "--json", "--skf-module", SOFTSKF, "--skf-module", MISSING,
                     "--skf-module", NOT_SKF, env=dict(self.agent.env), check=False, timeout=60)
        check = {c["id"]: c for c in json.loads(r.stdout)["checks"]}["skf.modules"]
        self.assertEqual(check["status"], "fail")
        self.assertIn(SOFTSKF + ": loaded, ULONG 32-bit (GM/T 0016)", check["detail"])
        self.assertIn(MISSING + ": unusable (cannot be loaded", check["detail"])
        self.assertIn(NOT_SKF + ": unusable (is not an SKF library (no SKF_EnumDev))", check["detail"])
        self.assertTrue(check["fix"])
        r = run_tool(harness.AGENT, "doctor", "--lang", "zh-CN", "--skf-module", SOFTSKF, env=dict(self.agent.env),
                     check=False, timeout=60)
        self.assertIn("UKey 厂商驱动（SKF，国密）", r.stdout)
        self.assertIn("ULONG 为 32 位（GM/T 0016）", r.stdout)

    def test_the_tokens_command_lists_the_device(self):
        r = run_tool(harness.AGENT, "tokens", "--json", "--skf-module", SOFTSKF, env=dict(self.agent.env),
                     timeout=60)
        body = json.loads(r.stdout)
        self.assertEqual([t["serial"] for t in body["tokens"]], ["SKF0001"])

    def test_skf_modules_in_the_config_are_checked(self):
        cfg = self.write("bad.json", json.dumps({"skf_modules": [SOFTSKF, 7]}))
        r = run_tool(harness.AGENT, "tokens", "--config", cfg, env=dict(self.agent.env), check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("skf_modules", r.stderr)
        cfg = self.write("good.json", json.dumps({"skf_modules": [SOFTSKF]}))
        r = run_tool(harness.AGENT, "tokens", "--json", "--config", cfg, env=dict(self.agent.env), timeout=60)
        self.assertEqual([m["path"] for m in json.loads(r.stdout)["skf"]], [SOFTSKF])
        r = run_tool(harness.AGENT, "tokens", "--skf-module", "", env=dict(self.agent.env), check=False)
        self.assertEqual(r.returncode, 2)


class BothAbis(Base):
    """The same device through softskf.so (32-bit ULONG) and softskf64.so
    (64-bit ULONG) in one agent: each library's ABI is found, and each
    reads and signs right."""
    libs = [SOFTSKF, SOFTSKF64]

    def test_each_library_has_its_abi(self):
        body = self.tokens()
        self.assertEqual({m["path"]: m["abi"] for m in body["skf"]}, {SOFTSKF: "ulong32", SOFTSKF64: "ulong64"})
        a, b = self.token(SOFTSKF), self.token(SOFTSKF64)
        self.assertNotEqual(a["id"], b["id"])  # the library's path is part of the id
        for t in (a, b):
            self.assertEqual((t["serial"], t["pin"]["retries_left"]), ("SKF0001", 6))
            self.assertEqual(sorted(c["id"] for c in t["certificates"]), ["c0e", "c0s", "c1s"])
        r = run_tool(harness.AGENT, "doctor", "--json", "--skf-module", SOFTSKF, "--skf-module", SOFTSKF64,
                     env=dict(self.agent.env), check=False, timeout=60)
        check = {c["id"]: c for c in json.loads(r.stdout)["checks"]}["skf.modules"]
        self.assertEqual(check["status"], "pass")
        self.assertIn(SOFTSKF + ": loaded, ULONG 32-bit (GM/T 0016)", check["detail"])
        self.assertIn(SOFTSKF64 + ": loaded, ULONG 64-bit (LP64 vendor header)", check["detail"])

    def test_rsa_login_through_either_abi(self):
        for lib in self.libs:
            t = self.token(lib)
            status, body = self.login({"token": t["id"], "certificate": "c1s", "pin": PIN})
            self.assertEqual(status, 200, body)
            self.rsa_verified(body)

    def test_wrong_pin_through_the_64_bit_abi(self):
        t = self.token(SOFTSKF64)
        status, body = self.pin(t["id"], "verify", {"pin": "000000"})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]), (403, "PIN_INCORRECT", 5))

    def test_sm2_login_through_either_abi(self):
        """Needs the libcrypto certificate layer (SM2 certificates)."""
        self.sm2_listed(self.token(SOFTSKF))
        for lib in self.libs:
            status, body = self.login({"token": self.token(lib)["id"], "pin": PIN})
            self.assertEqual(status, 200, body)
            self.sm2_verified(body)


class Pin(Base):
    """The user PIN, its counter, the last try, blocking and the admin PIN."""

    def test_verify_and_change(self):
        t = self.token()
        status, body = self.pin(t["id"], "verify", {"pin": PIN})
        self.assertEqual(status, 200, body)
        status, body = self.pin(t["id"], "change", {"old_pin": PIN, "new_pin": "abc12345"})
        self.assertEqual(status, 200, body)
        status, body = self.pin(t["id"], "verify", {"pin": PIN})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]), (403, "PIN_INCORRECT", 5))
        status, body = self.pin(t["id"], "verify", {"pin": "abc12345"})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.token()["pin"]["retries_left"], 6)
        # A PIN the format refuses never costs a try.
        status, body = self.pin(t["id"], "verify", {"pin": "123"})
        self.assertEqual((status, body["error"]["code"]), (400, "PIN_FORMAT"), body)
        self.assertEqual(self.token()["pin"]["retries_left"], 6)

    def test_last_try_blocked_and_unblocked_with_the_admin_pin(self):
        t = self.token()
        for left in (5, 4, 3, 2, 1):
            status, body = self.pin(t["id"], "verify", {"pin": "000000"})
            self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]),
                             (403, "PIN_INCORRECT", left), body)
        # The last try is spent only when the caller confirms it, in a
        # PIN operation and in a login alike.
        status, body = self.pin(t["id"], "verify", {"pin": "000000"})
        self.assertEqual((status, body["error"]["code"]), (409, "PIN_LAST_ATTEMPT"), body)
        status, body = self.login({"token": t["id"], "certificate": "c1s", "pin": "000000"})
        self.assertEqual((status, body["error"]["code"]), (409, "PIN_LAST_ATTEMPT"), body)
        self.assertEqual(self.token()["pin"]["retries_left"], 1)
        status, body = self.pin(t["id"], "verify", {"pin": "000000", "confirm_last_attempt": True})
        self.assertIn(body["error"]["code"], ("PIN_INCORRECT", "PIN_BLOCKED"), body)
        self.assertEqual(body["error"]["retries_left"], 0)
        self.assertEqual((self.token()["pin"]["blocked"], self.token()["pin"]["retries_left"]), (True, 0))
        status, body = self.pin(t["id"], "verify", {"pin": PIN})
        self.assertEqual((status, body["error"]["code"]), (423, "PIN_BLOCKED"), body)
        status, body = self.login({"token": t["id"], "certificate": "c1s", "pin": PIN})
        self.assertEqual((status, body["error"]["code"]), (423, "PIN_BLOCKED"), body)
        # The admin PIN is the API's "puk": a wrong one costs its own try.
        status, body = self.pin(t["id"], "unblock", {"puk": "87654321", "new_pin": "654321"})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]),
                         (403, "PUK_INCORRECT", 9), body)
        status, body = self.pin(t["id"], "unblock", {"puk": ADMIN, "new_pin": "654321"})
        self.assertEqual(status, 200, body)
        self.assertEqual((self.token()["pin"]["blocked"], self.token()["pin"]["retries_left"]), (False, 6))
        status, body = self.login({"token": t["id"], "certificate": "c1s", "pin": "654321"})
        self.assertEqual(status, 200, body)
        self.rsa_verified(body)

    def test_a_locked_admin_pin(self):
        sm2pki.edit_skf_state(self.state, lambda st: st["devices"][0]["applications"][0].update(
            admin_retries_left=0, pin_retries_left=0))
        t = self.token()
        status, body = self.pin(t["id"], "unblock", {"puk": ADMIN, "new_pin": "654321"})
        self.assertEqual((status, body["error"]["code"]), (423, "PUK_BLOCKED"), body)

    def test_the_admin_pin_last_attempt_guard(self):
        """Finding 1 (W1): the admin PIN (the API's PUK) is listed and its
        last try is spent only with confirm_last_attempt."""
        app = lambda st: st["devices"][0]["applications"][0]
        sm2pki.edit_skf_state(self.state, lambda st: app(st).update(admin_retries_left=2))
        t = self.token()
        self.assertEqual(t["puk"], {"retries_left": 2, "retries_low": False, "blocked": False})
        status, body = self.pin(t["id"], "unblock", {"puk": "87654321", "new_pin": "654321"})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]), (403, "PUK_INCORRECT", 1))
        self.assertEqual(self.token()["puk"]["retries_left"], 1)
        status, body = self.pin(t["id"], "unblock", {"puk": "87654321", "new_pin": "654321"})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]), (409, "PUK_LAST_ATTEMPT", 1))
        self.assertEqual(app(sm2pki.read_skf_state(self.state))["admin_retries_left"], 1)
        status, body = self.pin(t["id"], "unblock", {"puk": "87654321", "new_pin": "654321",
                                                     "confirm_last_attempt": True})
        self.assertEqual((status, body["error"]["code"]), (423, "PUK_BLOCKED"), body)
        self.assertEqual(self.token()["puk"], {"retries_left": 0, "retries_low": False, "blocked": True})
        self.assertEqual(self.pin(t["id"], "verify", {"pin": PIN})[0], 200)

    def test_login_with_a_wrong_pin(self):
        t = self.token()
        status, body = self.login({"token": t["id"], "certificate": "c1s", "pin": "000000"})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]), (403, "PIN_INCORRECT", 5))


class Login(Base):
    def test_rsa_login(self):
        t = self.token()
        status, body = self.login({"token": t["id"], "certificate": "c1s", "pin": PIN})
        self.assertEqual(status, 200, body)
        self.rsa_verified(body)
        # The device's verified state was cleared: a signature needs the PIN again.
        self.assertEqual(self.token()["pin"]["retries_left"], 6)

    def test_sm2_login_is_the_default(self):
        """Needs the libcrypto certificate layer (SM2 certificates)."""
        t = self.token()
        self.sm2_listed(t)
        status, body = self.login({"pin": PIN})
        self.assertEqual(status, 200, body)
        self.sm2_verified(body)

    def test_the_encryption_certificate_never_signs(self):
        t = self.token()
        status, body = self.login({"token": t["id"], "certificate": "c0e", "pin": PIN})
        self.assertNotEqual(status, 200, body)
        sm2 = "error" not in [c for c in t["certificates"] if c["id"] == "c0e"][0]
        self.assertEqual(body["error"]["code"], "TOKEN_NOT_SUPPORTED" if sm2 else "CERT_NOT_FOUND", body)


class Events(Base):
    def test_insert_and_remove(self):
        t = self.token()
        reader = t["reader"]
        tab = EventStream(self.agent)
        try:
            sm2pki.set_present(self.state, False)
            events = tab.wait_for_event("token-removed", timeout=20)
            removed = [d for e, d in events if e == "token-removed"]
            self.assertEqual([(d["reader"], d.get("token")) for d in removed], [(reader, t["id"])], events)
            self.assertEqual([x for x in self.tokens()["tokens"] if x["backend"] == "skf"], [])
            sm2pki.set_present(self.state, True)
            deadline = time.monotonic() + 20
            while not [e for e, _ in tab.events if e == "token-inserted"] and time.monotonic() < deadline:
                time.sleep(0.1)
            inserted = [d for e, d in tab.events if e == "token-inserted"]
            self.assertEqual([d["reader"] for d in inserted], [reader], tab.events)
            self.assertEqual(self.token()["id"], t["id"])
        finally:
            tab.close()
        # The watcher waits in SKF_WaitForDevEvent, and stops when cancelled.
        self.assertEqual(self.agent.stop(timeout=30), 0)

    def test_a_cancel_that_fails_still_stops_the_watcher(self):
        self.token()
        sm2pki.set_faults(self.state, cancel_error=True)
        time.sleep(0.5)
        started = time.monotonic()
        self.assertEqual(self.agent.stop(timeout=30), 0)
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(self.agent.log_count(r"the watcher did not stop"), 0)

    def test_a_wait_that_cannot_be_cancelled_does_not_hold_the_agent(self):
        self.token()
        # The wait under way returns on the removal; the next one hangs at
        # its entry, where SKF_CancelWaitForDevEvent cannot reach it.
        sm2pki.set_faults(self.state, hang=["SKF_WaitForDevEvent"])
        sm2pki.set_present(self.state, False)
        time.sleep(1.5)
        started = time.monotonic()
        self.assertEqual(self.agent.stop(timeout=60), 0)
        self.assertLess(time.monotonic() - started, 15)  # the watcher is given 2 s, then left behind
        self.assertEqual(self.agent.log_count(r"skf: softskf\.so: the watcher did not stop"), 1)


class BadOutputs(Base):
    """What a broken library hands back gives a clean error, never a crash."""

    def faults(self, **faults):
        sm2pki.set_faults(self.state, **faults)

    def faults_from_start(self, **faults):
        """The faults in place before the agent's first reading of the
        device: the reading at its start (the reminders' check) would
        otherwise come first, and a good reading is kept until the device
        is re-plugged."""
        self.agent.cleanup()
        self.faults(**faults)
        self.agent = self.start_agent()

    def reader(self):
        return [r for r in self.tokens()["readers"] if r.get("module") == SOFTSKF]

    def test_a_name_list_without_its_end(self):
        self.token()
        self.faults(bad_name_list=True)
        sm2pki.set_present(self.state, False)  # the cached reading goes
        sm2pki.set_present(self.state, True)
        deadline = time.monotonic() + 20
        while self.reader() and time.monotonic() < deadline:
            time.sleep(0.5)
        self.assertEqual(self.reader(), [])
        self.assertTrue(self.agent.wait_log(r"SKF_EnumDev: a name list (of \d+ bytes is not believed|that does not end)",
                                            1))
        self.faults()
        deadline = time.monotonic() + 20
        while not self.reader() and time.monotonic() < deadline:
            time.sleep(0.5)
        self.assertEqual(self.token()["serial"], "SKF0001")

    def test_a_devinfo_that_is_no_devinfo(self):
        self.faults_from_start(bad_devinfo=True)
        r = self.reader()
        self.assertEqual((r[0]["state"], r[0]["error"]["code"]), ("unresponsive", "CARD_ERROR"), r)
        self.assertEqual([t for t in self.tokens()["tokens"] if t["backend"] == "skf"], [])

    def test_certificates_that_are_no_certificates(self):
        self.faults_from_start(bad_cert=True)
        t = self.token()
        self.assertEqual(t["certificates"], [])
        status, body = self.login({"token": t["id"], "pin": PIN})
        self.assertEqual((status, body["error"]["code"]), (404, "CERT_NOT_FOUND"), body)

    def test_a_public_key_that_is_not_the_certificates(self):
        self.faults_from_start(pubkey_mismatch=True)
        t = self.token()
        # The signing certificates are left out; the encryption one never signs.
        self.assertEqual([c["id"] for c in t["certificates"]], ["c0e"])
        status, body = self.login({"token": t["id"], "certificate": "c1s", "pin": PIN})
        self.assertEqual((status, body["error"]["code"]), (404, "CERT_NOT_FOUND"), body)
        self.assertTrue(self.agent.wait_log(r"the signing certificate is not readable or not the key's", 1))

    def test_bad_sm2_signatures(self):
        """Needs the libcrypto certificate layer (SM2 certificates)."""
        t = self.token()
        self.sm2_listed(t)
        for bad, code in (("wrong", "CARD_ERROR"), ("garbage", "CARD_ERROR"), ("misaligned", "CARD_DATA_INVALID")):
            self.faults(bad_signature=bad)
            status, body = self.login({"token": t["id"], "pin": PIN})
            self.assertEqual(body["error"]["code"], code, (bad, body))
        self.faults()
        status, body = self.login({"token": t["id"], "pin": PIN})
        self.assertEqual(status, 200, body)


def in_background(fn):
    """Runs fn on a thread of its own: a caller stuck in the library times
    out there, as expected."""
    def run():
        with contextlib.suppress(Exception):
            fn()
    threading.Thread(target=run, daemon=True).start()


class Stuck(Base):
    def test_a_library_stuck_in_a_call_is_left_aside(self):
        self.assertEqual(self.token()["serial"], "SKF0001")
        sm2pki.set_faults(self.state, hang=["SKF_EnumDev", "SKF_ConnectDev"])
        # Whoever calls first (a listing or the device watcher) stays inside
        # the library; the next one waits out its 5 s turn and marks it
        # stuck; after that nobody waits for it.
        in_background(self.tokens)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lib = self.tokens()["skf"][0]
            if "error" in lib:
                break
        self.assertEqual(lib["error"]["code"], "MODULE_FAILED")
        self.assertIn("stopped answering", lib["error"]["detail"])
        self.assertIs(lib.get("stuck"), True)
        started = time.monotonic()
        self.assertEqual([t for t in self.tokens()["tokens"] if t["backend"] == "skf"], [])
        self.assertLess(time.monotonic() - started, 5)  # not waiting out the stuck library's turn
        self.assertEqual(self.agent.get_json("/api/v1/status")[0], 200)
        r = run_tool(harness.AGENT, "doctor", "--json", "--skf-module", SOFTSKF, env=dict(self.agent.env),
                     check=False, timeout=60)
        check = {c["id"]: c for c in json.loads(r.stdout)["checks"]}["skf.modules"]
        self.assertEqual(check["status"], "fail")
        self.assertIn("restart the agent", check["fix"])  # not "reinstall": that would not mend it
        # Back once the call returns.
        sm2pki.set_faults(self.state)
        deadline = time.monotonic() + 20
        while not [t for t in self.tokens()["tokens"] if t["backend"] == "skf"] and time.monotonic() < deadline:
            time.sleep(0.5)
        self.assertEqual(self.token()["serial"], "SKF0001")
        self.assertNotIn("stuck", self.tokens()["skf"][0])
        # Stuck again at the end: the agent still stops, cleanly and in time.
        sm2pki.set_faults(self.state, hang=["SKF_EnumDev"])
        in_background(self.tokens)
        time.sleep(1)
        started = time.monotonic()
        self.assertEqual(self.agent.stop(timeout=60), 0)
        self.assertLess(time.monotonic() - started, 30)

    def test_a_request_on_a_stuck_library_does_not_wait(self):
        t = self.token()
        sm2pki.set_faults(self.state, hang=["SKF_VerifyPIN"])
        in_background(lambda: self.pin(t["id"], "verify", {"pin": PIN}))
        time.sleep(0.5)
        status, body = self.pin(t["id"], "verify", {"pin": PIN})  # waits out the 5 s turn: stuck
        self.assertEqual((status, body["error"]["code"]), (503, "MODULE_FAILED"), body)
        started = time.monotonic()
        status, body = self.pin(t["id"], "verify", {"pin": PIN})
        self.assertEqual((status, body["error"]["code"]), (503, "MODULE_FAILED"), body)
        self.assertLess(time.monotonic() - started, 2)
        sm2pki.set_faults(self.state)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status, body = self.pin(t["id"], "verify", {"pin": PIN})
            if status == 200:
                break
            time.sleep(0.5)
        self.assertEqual(status, 200, body)



if __name__ == "__main__":
    harness.main()
