"""Deployment profiles (issue 18): two profiles loaded from "profile_dirs",
GET /api/v1/profiles, "profile" and "reminder" on a certificate that
expires in 10 days, "help" in a blocked PIN's error and in the diagnostics
and doctor, the "profiles" check; invalid profiles stop the agent (exit 2,
naming file, line and key); a certificate of an unknown issuer gets no help.
A private pcscd and the virtual PIV card."""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
from agent import run_tool  # noqa: E402

RENEW = "https://ca.example.gov.cn/renew"
UNLOCK = "https://ca.example.gov.cn/unlock"
SERVICE = "https://ca.example.gov.cn/service-points"


def by_id(report):
    return {c["id"]: c for c in report["checks"]}


class Profiles(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pcscd = pcsc.Pcscd().start()
        cls.dir = tempfile.mkdtemp(prefix="ukey-prof-")
        d = cls.dir
        # make_pki's CA issues 9C and 9D: an issuer no profile knows. 9A is
        # re-issued by the profile's CA, expiring in 10 days.
        cls.pki = pcsc.make_pki(d)
        p = lambda n: os.path.join(d, n)  # noqa: E731
        run_tool("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", p("pca.key"), "-out", p("pca.pem"), "-days", "3650",
                 "-subj", "/CN=ukey profile test CA/O=ukey-agent tests")
        run_tool("openssl", "x509", "-req", "-in", p("9a.csr"), "-CA", p("pca.pem"), "-CAkey", p("pca.key"),
                 "-CAcreateserial", "-days", "10", "-out", p("9a-pca.pem"), "-extfile", p("ext.cnf"),
                 "-extensions", "auth")
        with open(p("9a-pca.pem")) as f:
            cls.pki["9a"] = (f.read(), cls.pki["9a"][1])
        cls.dir_a, cls.dir_b = p("profiles-a"), p("profiles-b")
        os.makedirs(os.path.join(cls.dir_a, "certs"))
        os.makedirs(cls.dir_b)
        shutil.copy(p("pca.pem"), os.path.join(cls.dir_a, "certs", "pca.pem"))
        cls.profile_a = {
            "id": "test-ca", "name": {"zh-CN": "测试发证机构", "en": "Test CA"}, "hotline": "962600",
            "service_points_url": SERVICE, "links": {"renew": RENEW, "unlock": UNLOCK},
            "trust_anchors": ["certs/pca.pem"],
            "allow_origins": [{"origin": "https://portal.example.gov.cn", "pin_entry": "page"}],
            "issuers": [{"subject": "CN=ukey profile test CA, O=ukey-agent tests"}], "reminder_days": 30}
        cls.profile_b = {
            "id": "other-ca", "name": {"zh-CN": "另一家机构", "en": "Other CA"}, "hotline": "(021) 962600",
            "min_agent_version": "0.0.1", "issuers": [{"key_id": "00112233445566778899aabbccddeeff00112233"}]}
        with open(os.path.join(cls.dir_a, "test-ca.json"), "w") as f:
            json.dump(cls.profile_a, f, indent=1, ensure_ascii=False)
        with open(os.path.join(cls.dir_b, "other-ca.json"), "w") as f:
            json.dump(cls.profile_b, f, indent=1)
        cls.config = {"profile_dirs": [cls.dir_a, cls.dir_b]}
        cls.agent = harness.Agent(config=cls.config).start()

    @classmethod
    def tearDownClass(cls):
        cls.agent.cleanup()
        cls.pcscd.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def card(self, **state):
        path = os.path.join(self.dir, "card-%s.json" % self.id().rsplit(".", 1)[1])
        pcsc.write_card_state(path, self.pki, **state)
        card = pcsc.VirtualCard(self.pcscd, path).insert()
        self.addCleanup(card.remove)
        return card

    def serve_fails(self, config):
        """`serve` with `config`: exits 2 at once; returns its stderr."""
        tmp = tempfile.mkdtemp(prefix="ukey-prof-bad-", dir=self.dir)
        with open(os.path.join(tmp, "agent.json"), "w") as f:
            json.dump(config, f)
        r = run_tool(harness.AGENT, "serve", "--port", "0", "--probe-port", "0", "--state-dir",
                     os.path.join(tmp, "state"), "--config", os.path.join(tmp, "agent.json"), check=False,
                     timeout=30, env=dict(self.agent.env, HOME=tmp, XDG_CONFIG_HOME=os.path.join(tmp, "config")))
        self.assertEqual(r.returncode, 2, r.stderr)
        return r.stderr

    def test_profiles_listed(self):
        status, _, body = self.agent.get_json("/api/v1/profiles")
        self.assertEqual(status, 200, body)
        ids = [p["id"] for p in body["profiles"]]
        self.assertEqual(ids, ["test-ca", "other-ca"])
        a, b = body["profiles"]
        self.assertEqual(a["name"], {"zh-CN": "测试发证机构", "en": "Test CA"})
        self.assertEqual(a["hotline"], "962600")
        self.assertEqual(a["links"], {"renew": RENEW, "unlock": UNLOCK})
        self.assertEqual(a["service_points_url"], SERVICE)
        self.assertEqual(a["reminder_days"], 30)
        self.assertEqual(b["min_agent_version"], "0.0.1")
        self.assertEqual(b["links"], {})
        # The profile's allowed origin is merged into the agent's allow-list.
        status, _, body = self.agent.get_json("/api/v1/status")
        self.assertIn({"origin": "https://portal.example.gov.cn", "pin_entry": "page"}, body["allow_origins"])
        status, hdrs, body = self.agent.get_json("/api/v1/profiles", {"Origin": "https://portal.example.gov.cn"})
        self.assertEqual(status, 200)
        self.assertNotIn("file", body["profiles"][0])  # the paths are for the agent's own pages only

    def test_tokens_reminder_and_help(self):
        self.card(slots=("9a", "9c", "9d"))
        status, _, body = self.agent.get_json("/api/v1/tokens")
        self.assertEqual(status, 200, body)
        certs = {c["id"]: c for c in body["tokens"][0]["certificates"]}
        self.assertEqual(certs["9a"]["profile"], "test-ca")
        reminder = certs["9a"]["reminder"]
        self.assertIn(reminder["days_left"], (9, 10))
        self.assertEqual(reminder["window_days"], 30)
        self.assertEqual(reminder["renew_url"], RENEW)
        for slot in ("9c", "9d"):  # an issuer no profile knows
            self.assertNotIn("profile", certs[slot])
            self.assertNotIn("reminder", certs[slot])

        # Diagnostics: the expiring certificate's fix points to the renewal page and the hotline.
        status, _, report = self.agent.get_json("/api/v1/diagnostics?lang=en")
        checks = by_id(report)
        validity = checks["cert.validity"]
        self.assertEqual(validity["status"], "warn", validity)
        self.assertEqual(validity["help"], {"name": "Test CA", "phone": "962600", "url": RENEW})
        self.assertTrue(validity["fix"].endswith("Renew at %s, or call 962600 (Test CA)." % RENEW), validity["fix"])
        status, _, report = self.agent.get_json("/api/v1/diagnostics?lang=zh-CN")
        self.assertTrue(by_id(report)["cert.validity"]["fix"].endswith(
            "续期请访问 %s，或拨打 962600（测试发证机构）。" % RENEW), by_id(report)["cert.validity"]["fix"])
        # The chain of 9C/9D (unknown issuer, no anchor) fails, without help; 9A chains to the profile's anchor.
        self.assertEqual(checks["cert.chain"]["status"], "fail")
        self.assertNotIn("help", checks["cert.chain"])
        chains = {e["certificate"]: e["chain"] for e in checks["cert.chain"]["evidence"]}
        self.assertEqual(chains[certs["9a"]["id"]]["verdict"], "pass", chains)
        prof = checks["profiles"]
        self.assertEqual(prof["status"], "pass")
        self.assertEqual([p["id"] for p in prof["evidence"]["profiles"]], ["test-ca", "other-ca"])
        self.assertEqual([c["profile"] for c in prof["evidence"]["certificates"]], ["test-ca"])
        self.assertIn("2", prof["detail"])

        # doctor, with the same configuration: JSON and text.
        args = [harness.AGENT, "doctor", "--state-dir", self.agent.state_dir, "--config", self.agent.config_path,
                "--lang", "en"]
        r = subprocess.run(args + ["--json"], capture_output=True, text=True, timeout=60, env=self.agent.env)
        checks = by_id(json.loads(r.stdout))
        self.assertEqual(checks["cert.validity"]["help"]["url"], RENEW)
        self.assertEqual(checks["profiles"]["status"], "pass")
        text = subprocess.run(args, capture_output=True, text=True, timeout=60, env=self.agent.env).stdout
        self.assertIn("[ OK ] Issuer profiles: 2 deployment profile(s) loaded (test-ca, other-ca)", text)
        self.assertIn("Renew at %s, or call 962600 (Test CA)." % RENEW, text)
        # `tokens` with --profile loads the same file.
        none = os.path.join(self.dir, "no-dirs.json")
        with open(none, "w") as f:
            json.dump({"profile_dirs": []}, f)
        r = run_tool(harness.AGENT, "tokens", "--json", "--config", none, "--profile",
                     os.path.join(self.dir_a, "test-ca.json"), env=self.agent.env)
        certs = {c["id"]: c for c in json.loads(r.stdout)["tokens"][0]["certificates"]}
        self.assertEqual(certs["9a"]["profile"], "test-ca")

    def test_blocked_pin_help(self):
        self.card(tries=0)
        token = self.agent.get_json("/api/v1/tokens")[2]["tokens"][0]["id"]
        status, _, raw = self.agent.request("POST", "/api/v1/tokens/%s/pin/verify" % token,
                                            {"Content-Type": "application/json", "Accept-Language": "en"},
                                            body=json.dumps({"pin": "123456"}))
        body = json.loads(raw)
        self.assertEqual((status, body["error"]["code"]), (423, "PIN_BLOCKED"), body)
        self.assertEqual(body["error"]["help"], {"name": "Test CA", "phone": "962600", "url": UNLOCK})
        # A login of a site that sends the PIN (the profile's own allowed origin, pin_entry "page"): the same help.
        status, _, raw = self.agent.request("POST", "/api/v1/login",
                                            {"Content-Type": "application/json",
                                             "Origin": "https://portal.example.gov.cn"},
                                            body=json.dumps({"challenge": base64.b64encode(os.urandom(32)).decode(),
                                                             "pin": "123456", "token": token}))
        body = json.loads(raw)
        self.assertEqual(body["error"]["code"], "PIN_BLOCKED", body)
        self.assertEqual(body["error"]["help"], {"name": "测试发证机构", "phone": "962600", "url": UNLOCK})
        checks = by_id(self.agent.get_json("/api/v1/diagnostics?lang=en")[2])
        self.assertEqual(checks["pin.state"]["status"], "fail")
        self.assertEqual(checks["pin.state"]["help"]["url"], UNLOCK)
        self.assertTrue(checks["pin.state"]["fix"].endswith("Unblock at %s, or call 962600 (Test CA)." % UNLOCK))

    def test_unknown_issuer_no_help(self):
        # A card with only make_pki's certificates: no profile, no help, no reminder.
        self.card(tries=0, slots=("9c", "9d"))
        listing = self.agent.get_json("/api/v1/tokens")[2]["tokens"][0]
        self.assertFalse(any("profile" in c for c in listing["certificates"]))
        status, _, raw = self.agent.request("POST", "/api/v1/tokens/%s/pin/verify" % listing["id"],
                                            {"Content-Type": "application/json"}, body=json.dumps({"pin": "123456"}))
        body = json.loads(raw)
        self.assertEqual(body["error"]["code"], "PIN_BLOCKED", body)
        self.assertNotIn("help", body["error"])
        checks = by_id(self.agent.get_json("/api/v1/diagnostics?lang=en")[2])
        self.assertEqual(checks["pin.state"]["status"], "fail")
        for cid in ("pin.state", "cert.validity", "cert.chain", "cert.revoked"):
            self.assertNotIn("help", checks[cid], cid)
        self.assertEqual(checks["profiles"]["evidence"]["certificates"], [])

    def test_demo_profile(self):
        """profiles/demo.json is valid and covers the demo CA of scripts/demo
        and the SM2/RSA chains of sm2pki.py (their issuers' names as made there)."""
        src = os.environ.get("UKEY_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
        demo = os.path.join(src, "profiles", "demo.json")
        r = run_tool(harness.AGENT, "profile", "check", demo, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        d = tempfile.mkdtemp(prefix="ukey-prof-demo-", dir=self.dir)
        p = lambda n: os.path.join(d, n)  # noqa: E731
        certs = []
        for i, subj in enumerate(("/CN=ukey-agent Demo CA/O=ukey-agent demo",
                                  "/C=CN/O=ukey-agent tests/CN=ukey SM2 test intermediate",
                                  "/C=CN/O=ukey-agent tests/CN=ukey RSA test intermediate",
                                  "/CN=ukey-agent Demo CA/O=another demo")):
            run_tool("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", p("ca%d.key" % i), "-out", p("ca%d.pem" % i), "-days", "30", "-subj", subj)
            run_tool("openssl", "x509", "-req", "-in", os.path.join(self.dir, "9a.csr"), "-CA", p("ca%d.pem" % i),
                     "-CAkey", p("ca%d.key" % i), "-CAcreateserial", "-days", "5", "-out", p("u%d.pem" % i))
            with open(p("u%d.pem" % i)) as f:
                certs.append(f.read())
        with harness.Agent(args=["--profile", demo], config={"profile_dirs": []}) as agent:
            for i, pem in enumerate(certs):
                st, _, raw = agent.request("POST", "/api/v1/certificates/check?lang=zh-CN",
                                           {"Content-Type": "application/json"}, json.dumps({"certificate": pem}))
                self.assertEqual(st, 200, raw)
                validity = by_id(json.loads(raw))["cert.validity"]
                self.assertEqual(validity["status"], "warn")
                if i < 3:
                    self.assertEqual(validity["help"], {"name": "ukey-agent 演示 CA", "phone": "962600",
                                                        "url": "http://127.0.0.1:8088/renew.html"})
                    self.assertTrue(validity["fix"].endswith(
                        "续期请访问 http://127.0.0.1:8088/renew.html，或拨打 962600（ukey-agent 演示 CA）。"))
                else:
                    self.assertNotIn("help", validity)

    def test_reminder_window(self):
        """A profile's reminder_days is cert.validity's warning window too: make_pki's certificate, valid 365
        days, passes by default and warns under a profile of its CA with a 365-day window."""
        d = tempfile.mkdtemp(prefix="ukey-prof-win-", dir=self.dir)
        with open(os.path.join(d, "long.json"), "w") as f:
            json.dump({"id": "long-window", "name": {"zh-CN": "长", "en": "Long"}, "reminder_days": 365,
                       "links": {"renew": RENEW}, "issuers": [{"subject": "CN=ukey test CA, O=ukey-agent tests"}]}, f)
        body = json.dumps({"certificate": self.pki["9c"][0]})
        status, _, raw = self.agent.request("POST", "/api/v1/certificates/check?lang=en",
                                            {"Content-Type": "application/json"}, body)
        self.assertEqual(by_id(json.loads(raw))["cert.validity"]["status"], "pass")
        with harness.Agent(config={"profile_dirs": [d]}) as agent:
            status, _, raw = agent.request("POST", "/api/v1/certificates/check?lang=en",
                                           {"Content-Type": "application/json"}, body)
            validity = by_id(json.loads(raw))["cert.validity"]
            self.assertEqual(validity["status"], "warn", validity)
            self.assertEqual(validity["help"], {"name": "Long", "url": RENEW})
            self.assertTrue(validity["fix"].endswith("Renew at %s (Long)." % RENEW), validity["fix"])

    def test_min_agent_version(self):
        """A profile's min_agent_version feeds agent.version in doctor (the stricter of it and the portal's)."""
        d = tempfile.mkdtemp(prefix="ukey-prof-ver-", dir=self.dir)
        with open(os.path.join(d, "new.json"), "w") as f:
            json.dump(dict(self.profile_b, id="needs-new", min_agent_version="99.0"), f)
        with open(d + ".agent.json", "w") as f:
            json.dump({"profile_dirs": [d]}, f)
        r = subprocess.run([harness.AGENT, "doctor", "--json", "--lang", "en", "--state-dir", self.agent.state_dir,
                            "--config", d + ".agent.json"], capture_output=True, text=True, timeout=60,
                           env=self.agent.env)
        version = by_id(json.loads(r.stdout))["agent.version"]
        self.assertEqual(version["status"], "fail", version)
        self.assertEqual(version["evidence"]["min_version"], "99.0")

    def test_invalid_profiles_stop_serve(self):
        bad = os.path.join(self.dir, "bad")
        os.makedirs(bad, exist_ok=True)
        path = os.path.join(bad, "bad.json")
        with open(path, "w") as f:
            f.write('{\n  "id": "bad-ca",\n  "name": {"zh-CN": "坏", "en": "Bad"},\n'
                    '  "issuers": [{"subject": "CN=Bad"}],\n  "links": {"renew": "http://portal.example/"}\n}\n')
        err = self.serve_fails({"profile_dirs": [self.dir_a, bad]})
        self.assertIn('%s:5: key "renew": must be an https:// URL' % path, err)
        # The same through `profile check`, and a good file passes.
        r = run_tool(harness.AGENT, "profile", "check", path, os.path.join(self.dir_a, "test-ca.json"), check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn('%s:5: key "renew"' % path, r.stderr)
        self.assertIn("test-ca.json: ok", r.stdout)
        # Two files with one id: both named.
        dup = os.path.join(self.dir, "dup")
        os.makedirs(dup, exist_ok=True)
        with open(os.path.join(dup, "again.json"), "w") as f:
            json.dump(dict(self.profile_a, trust_anchors=[]), f)
        err = self.serve_fails({"profile_dirs": [self.dir_a, dup]})
        self.assertIn('again.json: key "id": the profile id "test-ca" is also used by %s'
                      % os.path.join(self.dir_a, "test-ca.json"), err)
        # An unknown key and a missing anchors file, given with --profile-style "profiles".
        with open(path, "w") as f:
            f.write('{"id": "bad-ca", "name": {"zh-CN": "坏", "en": "Bad"},\n "issuers": [{"subject": "CN=Bad"}],\n'
                    ' "trust_anchors": ["missing.pem"]}\n')
        err = self.serve_fails({"profile_dirs": [], "profiles": [path]})
        self.assertIn('%s:3: key "trust_anchors": %s: no such file' % (path, os.path.join(bad, "missing.pem")), err)


if __name__ == "__main__":
    harness.main()
