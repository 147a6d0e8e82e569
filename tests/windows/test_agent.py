"""The Windows agent (ukey-agent.exe of UKEY_WIN_BUILD) under Wine, driven
from Linux as a browser would drive it on Windows: TLS to Linux curl,
openssl and Python with the agent's CA checked; the virtual PIV card
through the host's pcscd (Wine's winscard bridge, tests/windows/wine.py);
a PIN verified; a login whose token the Linux ukey-verify accepts; the
PKCS#11 mock and the soft SKF token loaded as DLLs.

In a mount and network namespace of its own (a private /run/pcscd, and a
wineserver whose sockets are made there), like tests/integration."""
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "integration")]
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
import sm2pki  # noqa: E402
import wine  # noqa: E402
from agent import run_tool  # noqa: E402

# The Linux build beside the Windows one: the virtual card and ukey-verify.
harness.AGENT = os.path.join(os.path.dirname(os.environ["UKEY_VCARD"]), "ukey-agent")
VERIFY = os.environ["UKEY_VERIFY"]
PORTAL = "https://portal.gov.example"
CHALLENGE = base64.b64encode(bytes(range(32))).decode()
SKF_PIN = "123456"  # sm2pki's soft SKF device


class WinAgent(harness.Agent):
    """harness.Agent with ukey-agent.exe under Wine in its own prefix:
    Windows paths for its files, and stopped with SIGINT (CTRL_C_EVENT)."""
    stop_signal = signal.SIGINT

    def __init__(self, args=(), env=None, **kw):
        super().__init__(args=args, **kw)
        self.wine = wine.Wine()
        self.exe = self.wine.install("ukey-agent.exe")
        self.env = dict(self.wine.env, **(env or {}))

    def command(self):
        cmd = [wine.WINE, self.exe, "serve", "--port", "0", "--probe-port", "0",
               "--state-dir", wine.winpath(self.state_dir), "--log-level", "debug"]
        if self.config_path:
            cmd += ["--config", wine.winpath(self.config_path)]
        return cmd + self.args

    def cleanup(self):
        try:
            super().cleanup()
        finally:
            self.wine.cleanup()


class Tls(unittest.TestCase):
    """TLS from Linux clients, each checking the chain up to the agent's CA."""

    @classmethod
    def setUpClass(cls):
        cls.agent = WinAgent().start(timeout=90)

    @classmethod
    def tearDownClass(cls):
        cls.agent.cleanup()

    def test_python_ssl_with_the_agents_ca(self):
        status, _, body = self.agent.get_json("/api/v1/status")
        self.assertEqual(status, 200, body)
        self.assertIn("version", body)

    def test_curl_checks_the_chain(self):
        url = "https://127.0.0.1:%d/api/v1/status" % self.agent.port
        r = run_tool("curl", "-sS", "--max-time", "20", "--cacert", self.agent.ca, url)
        self.assertIn('"version"', r.stdout)
        # Without the agent's CA the same server is refused: the chain is checked.
        r = run_tool("curl", "-sS", "--max-time", "20", url, check=False)
        self.assertEqual(r.returncode, 60, r.stderr)

    def test_openssl_verifies_the_server(self):
        r = run_tool("openssl", "s_client", "-connect", "127.0.0.1:%d" % self.agent.port, "-CAfile", self.agent.ca,
                     "-verify_return_error", "-verify_hostname", "127.0.0.1", "-servername", "localhost",
                     input="", check=False, timeout=30)
        self.assertIn("Verify return code: 0 (ok)", r.stdout, r.stderr)


class PivCard(pcsc.CardCase):
    """The virtual PIV card through pcscd and Wine's winscard bridge."""
    agent_args = ("--allow-origin", PORTAL)
    agent_config = {"pin_entry": "page"}

    @classmethod
    def setUpClass(cls):
        cls.pcscd = pcsc.Pcscd().start()
        cls.dir = tempfile.mkdtemp(prefix="ukey-card-")
        cls.pki = pcsc.make_pki(cls.dir)
        cls.agent = WinAgent(args=list(cls.agent_args), config=cls.agent_config).start(timeout=90)

    def test_lists_the_card_verifies_the_pin_and_logs_in(self):
        tokens = self.tokens()
        piv = [t for t in tokens["tokens"] if t["backend"] == "pcsc"]
        self.assertEqual(len(piv), 1, tokens)
        self.assertEqual(piv[0]["reader"], pcsc.READER)
        self.token_id = piv[0]["id"]
        status, body = self.pin("verify", {"pin": "000000"})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]),
                         (403, "PIN_INCORRECT", 2), body)
        status, body = self.pin("verify", {"pin": "123456"})
        self.assertEqual(status, 200, body)
        status, _, raw = self.agent.request("POST", "/api/v1/login",
                                            {"Content-Type": "application/json", "Origin": PORTAL},
                                            body=json.dumps({"challenge": CHALLENGE, "pin": "123456"}))
        token = json.loads(raw)
        self.assertEqual(status, 200, token)
        self.assertEqual((token["format"], token["algorithm"]), ("web-eid:1.0", "ES256"))
        path = os.path.join(self.dir, "token.json")
        with open(path, "w") as f:
            json.dump(token, f)
        r = run_tool(VERIFY, "--token", path, "--challenge", CHALLENGE, "--origin", PORTAL,
                     "--ca-file", os.path.join(self.dir, "ca.pem"), check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("CN=张三", r.stdout)
        self.assertTrue(any(l.startswith("APDU 00 87 11 9A") for l in self.card.apdu_log()))
        self.assertNotIn("123456", self.agent.log_text())


class ChineseReader(pcsc.CardCase):
    """A reader whose driver gives it a Chinese name, on a Chinese Windows
    (ANSI code page 936): the name reaches the page as UTF-8, and the card
    is reached under it."""
    NAME = "虚拟读卡器"

    @classmethod
    def setUpClass(cls):
        cls.pcscd = pcsc.Pcscd(cls.NAME).start()
        cls.dir = tempfile.mkdtemp(prefix="ukey-card-")
        cls.pki = pcsc.make_pki(cls.dir)
        cls.agent = WinAgent(config={"pin_entry": "page"}, env={"LC_ALL": "zh_CN.UTF-8"}).start(timeout=90)

    def test_the_readers_name_in_utf8_and_the_card_reached(self):
        tokens = self.tokens()
        self.assertEqual([r["name"] for r in tokens["readers"]], [self.NAME + " 00 00", self.NAME + " 00 01"], tokens)
        self.token_id = tokens["tokens"][0]["id"]
        status, body = self.pin("verify", {"pin": "123456"})
        self.assertEqual(status, 200, body)


class Modules(unittest.TestCase):
    """The PKCS#11 mock and the soft SKF token, each loaded as a DLL."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ukey-win-modules-")
        self.pki = sm2pki.make_sm2_pki(os.path.join(self.dir, "pki"), check=False)
        self.state = os.path.join(self.dir, "skf.json")
        sm2pki.write_skf_state(self.state, self.pki)
        with open(os.path.join(self.dir, "present"), "w") as f:
            f.write("Mock UKey")
        build = wine.build_dir()
        self.agent = WinAgent(
            args=["--allow-origin", PORTAL,
                  "--pkcs11-module", wine.winpath(os.path.join(build, "p11mock.dll")),
                  "--skf-module", wine.winpath(os.path.join(build, "softskf.dll"))],
            config={"pin_entry": "page"},
            env={"UKEY_P11MOCK_DIR": wine.winpath(self.dir), "SOFTSKF_STATE": wine.winpath(self.state)})
        self.agent.start(timeout=90)

    def tearDown(self):
        self.agent.cleanup()
        subprocess.run(["rm", "-rf", self.dir])

    def test_both_modules_load_and_the_sm2_token_logs_in(self):
        deadline = time.monotonic() + 60
        while True:
            status, _, body = self.agent.get_json("/api/v1/tokens")
            self.assertEqual(status, 200, body)
            labels = {t["backend"]: t for t in body["tokens"]}
            if {"pkcs11", "skf"} <= set(labels) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(labels["pkcs11"]["label"], "Mock UKey", body)
        self.assertIn("skf", labels, body)
        self.assertTrue(all(m["loaded"] for m in body["skf"]), body["skf"])
        status, _, raw = self.agent.request(
            "POST", "/api/v1/login", {"Content-Type": "application/json", "Origin": PORTAL},
            body=json.dumps({"challenge": CHALLENGE, "pin": SKF_PIN, "token": labels["skf"]["id"],
                             "certificate": "c0s"}))
        token = json.loads(raw)
        self.assertEqual(status, 200, token)
        self.assertEqual(token["algorithm"], "SM2-SM3")
        path = os.path.join(self.dir, "token.json")
        with open(path, "w") as f:
            json.dump(token, f)
        r = run_tool(VERIFY, "--token", path, "--challenge", CHALLENGE, "--origin", PORTAL,
                     "--ca-file", self.pki.chain, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
