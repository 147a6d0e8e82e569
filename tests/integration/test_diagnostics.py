"""Diagnostics (issue 5, first slice): each check gives each verdict it can,
through GET /api/v1/diagnostics and `ukey-agent doctor --json`, with a
private pcscd and the virtual card."""
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
from test_tokens import HOLD_EXCLUSIVE  # noqa: E402


def by_id(report):
    return {c["id"]: c for c in report["checks"]}


class Diagnostics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pcscd = pcsc.Pcscd()  # mounted, not started yet: no PC/SC service
        cls.dir = tempfile.mkdtemp(prefix="ukey-diag-")
        cls.pki = pcsc.make_pki(cls.dir)
        cls.agent = harness.Agent().start()

    @classmethod
    def tearDownClass(cls):
        cls.agent.cleanup()
        cls.pcscd.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def diagnostics(self, query="", headers=None, agent=None):
        status, _, body = (agent or self.agent).get_json("/api/v1/diagnostics" + query, headers)
        self.assertEqual(status, 200, body)
        return by_id(body)

    def card(self, faults=(), **state):
        path = os.path.join(self.dir, "card-%s.json" % self.id().rsplit(".", 1)[1])
        pcsc.write_card_state(path, self.pki, **state)
        return pcsc.VirtualCard(self.pcscd, path, faults).insert()

    def test_all_verdicts(self):
        # 1. No PC/SC service: the service fails, everything that needs it is skipped.
        checks = self.diagnostics("?lang=en")
        self.assertEqual(checks["pcsc.service"]["status"], "fail")
        self.assertEqual(checks["pcsc.service"]["evidence"]["error"], "SCARD_E_NO_SERVICE")
        self.assertIn("pcscd", checks["pcsc.service"]["fix"])
        for cid in ("reader.present", "token.recognised", "pin.state", "cert.validity"):
            self.assertEqual(checks[cid]["status"], "skip", cid)
        self.assertEqual(checks["agent.version"]["status"], "pass")
        self.assertEqual(checks["network.proxy"]["status"], "pass")
        self.assertEqual(checks["agent.tls"]["status"], "warn")  # valid, but in no trust store

        # 2. The service, readers, no card.
        self.pcscd.start()
        checks = self.diagnostics("?lang=en")
        self.assertEqual(checks["pcsc.service"]["status"], "pass")
        self.assertEqual(checks["reader.present"]["status"], "pass")
        for cid in ("reader.state", "token.recognised", "token.conflict", "pin.state", "cert.validity"):
            self.assertEqual(checks[cid]["status"], "skip", cid)

        # 3. A good token: everything passes.
        card = self.card()
        checks = self.diagnostics("?lang=en")
        for cid in ("reader.state", "token.recognised", "token.conflict", "pin.state", "cert.validity"):
            self.assertEqual(checks[cid]["status"], "pass", (cid, checks[cid]))
        self.assertIsNone(checks["pin.state"].get("fix"))
        card.remove()

        # 4. One try left: warn; blocked: fail.
        for tries, verdict in ((1, "warn"), (0, "fail")):
            card = self.card(tries=tries)
            self.assertEqual(self.diagnostics()["pin.state"]["status"], verdict, tries)
            card.remove()
        # The PUK's counter too (finding 1): its last try and a blocked PUK
        # warn; the PIN and the PUK both blocked fail.
        for tries, puk_tries, verdict, words in ((3, 1, "warn", "Only one PUK attempt"),
                                                 (3, 0, "warn", "The PUK of a token is blocked"),
                                                 (0, 0, "fail", "Both the PIN and the PUK")):
            card = self.card(tries=tries, puk_tries=puk_tries)
            check = self.diagnostics("?lang=en")["pin.state"]
            self.assertEqual((check["status"], check["evidence"][0]["puk"]["retries_left"]), (verdict, puk_tries))
            self.assertIn(words, check["detail"])
            card.remove()

        # 5. Not a token the agent knows (SELECT of the PIV application fails).
        card = self.card(faults=("sw=A4:6A82",))
        checks = self.diagnostics("?lang=en")
        self.assertEqual(checks["token.recognised"]["status"], "fail")
        self.assertEqual(checks["reader.state"]["status"], "pass")
        card.remove()

        # 6. Another program holds the token exclusively.
        card = self.card()
        holder = subprocess.Popen([sys.executable, "-c", HOLD_EXCLUSIVE, pcsc.READER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, preexec_fn=harness._die_with_parent)
        try:
            self.assertEqual(holder.stdout.readline().strip(), "held")
            self.assertEqual(self.diagnostics()["token.conflict"]["status"], "fail")
        finally:
            holder.stdin.close()
            holder.wait(10)
            holder.stdout.close()
        card.remove()
        # pcscd's vpcd reader sometimes no longer sees new cards after an
        # exclusive holder and a removal; the other tests get a fresh pcscd.
        self.pcscd.stop()
        self.pcscd.start()

    def test_certificate_expiry(self):
        self.pcscd.proc or self.pcscd.start()
        pki = dict(self.pki)
        for name, args, verdict in (("soon", [], "warn"), ("old", ["faketime", "-f", "-400d"], "fail")):
            key, csr, crt = (os.path.join(self.dir, "%s.%s" % (name, ext)) for ext in ("key", "csr", "pem"))
            run_tool("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", key, "-out", csr, "-subj", "/CN=%s" % name)
            run_tool(*args, "openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(self.dir, "ca.pem"),
                     "-CAkey", os.path.join(self.dir, "ca.key"), "-CAcreateserial", "-days", "10", "-out", crt)
            with open(crt) as f, open(key) as g:
                pki["9a"] = (f.read(), g.read())
            path = os.path.join(self.dir, "card-%s.json" % name)
            pcsc.write_card_state(path, pki)
            card = pcsc.VirtualCard(self.pcscd, path).insert()
            try:
                check = self.diagnostics("?lang=en")["cert.validity"]
                self.assertEqual(check["status"], verdict, check)
                self.assertIn("renew", check["fix"])
            finally:
                card.remove()

    def test_chain_crl_and_revocation(self):
        self.pcscd.proc or self.pcscd.start()
        d = tempfile.mkdtemp(prefix="ukey-diag-crl-", dir=self.dir)
        server = pcsc.CrlServer(d)
        pki = pcsc.make_pki(d, crl_url="http://127.0.0.1:%d/ca.crl" % server.port)
        path = os.path.join(d, "card.json")
        pcsc.write_card_state(path, pki)
        agent = harness.Agent(args=["--ca-file", os.path.join(d, "ca.pem")]).start()
        card = pcsc.VirtualCard(self.pcscd, path).insert()
        try:
            checks = self.diagnostics("?lang=en", agent=agent)  # no CRL published yet: 404
            self.assertEqual(checks["cert.chain"]["status"], "pass")
            self.assertEqual(checks["cert.crl.published"]["status"], "warn")
            self.assertIn("48 hours", checks["cert.crl.published"]["fix"])
            self.assertEqual(checks["cert.revoked"]["status"], "skip")
            self.assertEqual(checks["system.clock"]["status"], "pass")  # the 404 still carried a Date
            pcsc.make_crl(d)
            checks = self.diagnostics("?lang=en", agent=agent)
            self.assertEqual((checks["cert.crl.published"]["status"], checks["cert.revoked"]["status"]), ("pass", "pass"))
            # Again: the verified (PEM) CRL now comes from the agent's cache.
            checks = self.diagnostics("?lang=en", agent=agent)
            self.assertEqual(checks["cert.revoked"]["status"], "pass")
            with_crl = [e["crl"] for e in checks["cert.revoked"]["evidence"] if "url" in e["crl"]]
            self.assertTrue(with_crl and all(c.get("cached") for c in with_crl), with_crl)
            # An agent whose clock is two days behind: system.clock fails.
            from test_tls import FAKETIME_LIB
            skewed = harness.Agent(args=["--ca-file", os.path.join(d, "ca.pem")], env={
                "LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "-2d", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}).start()
            try:
                skewed_checks = self.diagnostics("?lang=en", agent=skewed)
                clock = skewed_checks["system.clock"]
                self.assertEqual(clock["status"], "fail",
                                 (clock, skewed_checks["token.recognised"], skewed_checks["token.conflict"],
                                  skewed_checks["cert.crl.published"],
                                  skewed.log_text()[-2000:]))
                self.assertLess(clock["evidence"]["local"] - clock["evidence"]["server"], -86400)
            finally:
                skewed.cleanup()
            pcsc.make_crl(d, revoke=("9a",))
            # The agent keeps a verified CRL until its nextUpdate: forget it.
            shutil.rmtree(os.path.join(agent.state_dir, "cache"))
            checks = self.diagnostics("?lang=en", agent=agent)
            self.assertEqual(checks["cert.revoked"]["status"], "fail")
            self.assertIn("new certificate", checks["cert.revoked"]["fix"])
            # Without trust anchors the chain is not judged, and says why.
            checks = self.diagnostics("?lang=en")
            self.assertEqual(checks["cert.chain"]["status"], "skip")
            self.assertIn("--ca-file", checks["cert.chain"]["detail"])
            # A CA the certificates do not come from: the chain fails.
            other = harness.Agent(args=["--ca-file", os.path.join(self.dir, "ca.pem")]).start()
            try:
                self.assertEqual(self.diagnostics("?lang=en", agent=other)["cert.chain"]["status"], "fail")
            finally:
                other.cleanup()
        finally:
            card.remove()
            agent.cleanup()
            server.stop()

    def test_keymatch(self):
        self.pcscd.proc or self.pcscd.start()
        other_key = os.path.join(self.dir, "other.key")
        run_tool("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", other_key)
        with open(other_key) as f:
            stranger = f.read()
        for name, card_auth, verdict in (("match", self.pki["9d"], "pass"),
                                         ("mismatch", (self.pki["9a"][0], stranger), "fail")):
            pki = dict(self.pki, **{"9e": card_auth})
            path = os.path.join(self.dir, "card-key-%s.json" % name)
            pcsc.write_card_state(path, pki, slots=("9a", "9e"))
            card = pcsc.VirtualCard(self.pcscd, path).insert()
            try:
                check = self.diagnostics("?lang=en")["cert.keymatch"]
                self.assertEqual(check["status"], verdict, check)
                verdicts = {e["certificate"]: e["verdict"] for e in check["evidence"]}
                self.assertTrue(verdicts["9a"].startswith("skip"))  # needs the PIN: never tried
                self.assertEqual(verdicts["9e"], "match" if verdict == "pass" else "mismatch")
                self.assertFalse([l for l in card.apdu_log() if " 20 00 80 lc=8" in l])  # no PIN sent
            finally:
                card.remove()

    def test_redacted_report(self):
        self.pcscd.proc or self.pcscd.start()
        card = self.card()
        try:
            plain = json.dumps(self.diagnostics("?lang=en"), ensure_ascii=False)
            self.assertIn("张三", plain)
            for how in ("api", "doctor"):
                if how == "api":
                    status, _, report = self.agent.get_json("/api/v1/diagnostics?lang=en&mask_names=1")
                    self.assertEqual(status, 200)
                else:
                    r = subprocess.run([harness.AGENT, "doctor", "--json", "--mask-names", "--state-dir",
                                        self.agent.state_dir, "--lang", "en"],
                                       capture_output=True, text=True, timeout=60, env=self.agent.env)
                    report = json.loads(r.stdout)
                text = json.dumps(report, ensure_ascii=False)
                self.assertTrue(report["names_masked"], how)
                self.assertNotIn("张三", text, how)
                self.assertNotIn("测试单位", text, how)
                self.assertIn("CN=张*", text, how)
                self.assertNotIn('"der"', text, how)
                self.assertNotIn(pcsc.TEST_ID_NUMBER, text, how)
                certs = by_id(report)["cert.validity"]["evidence"]
                self.assertTrue(all(len(c["serial"]) > 0 for c in certs), how)  # serials are kept
        finally:
            card.remove()

    def test_home_directory_and_http_origins(self):
        """Redteam-2 W8: the trust-store paths name the OS user; with
        mask_names (API and doctor) and always for a portal, the home
        directory is "~". W12: an allowed http:// origin gets a warning
        (origins.http) unless marked "insecure_http": true; the check (the
        allow-list) is shown to the agent's owner only."""
        home = os.path.join(self.dir, "home", "zhangsan-ukey")
        nssdb = os.path.join(home, ".pki", "nssdb")
        os.makedirs(nssdb)
        run_tool("certutil", "-N", "-d", "sql:" + nssdb, "--empty-password")
        portal = "https://portal.gov.example"
        config = {"allow_origins": [portal, "http://127.0.0.1:8090",
                                    {"origin": "http://127.0.0.1:8088", "insecure_http": True}]}
        with harness.Agent(config=config, env={"HOME": home}, state_dir=os.path.join(home, "state")) as agent:
            def report(query="", origin=None):
                status, _, body = agent.get_json("/api/v1/diagnostics?lang=en" + query,
                                                 {"Origin": origin} if origin else None)
                self.assertEqual(status, 200, body)
                return body

            def doctor(*extra):
                r = subprocess.run([harness.AGENT, "doctor", "--config", agent.config_path, "--state-dir",
                                    agent.state_dir, "--lang", "en", *extra],
                                   capture_output=True, text=True, timeout=60, env=agent.env)
                return r.stdout

            plain = json.dumps(report())
            self.assertIn('"path": "sql:%s"' % nssdb, plain)  # the owner's own page sees its paths
            for how, text in (("api", json.dumps(report("&mask_names=1"))),
                              ("portal", json.dumps(report(origin=portal))),
                              ("doctor --json", doctor("--json", "--mask-names")),
                              ("doctor", doctor("--mask-names"))):
                self.assertNotIn("zhangsan-ukey", text, how)
                if how != "doctor":
                    self.assertIn('"path": "sql:~/.pki/nssdb"', text, how)
            # The http:// warning, on the diagnostic page's API and in doctor.
            check = by_id(report())["origins.http"]
            self.assertEqual(check["status"], "warn", check)
            self.assertIn("http://127.0.0.1:8090", check["detail"])
            self.assertIn("insecure_http", check["fix"])
            self.assertEqual(check["evidence"]["http_origins"],
                             [{"origin": "http://127.0.0.1:8090", "insecure_http": False},
                              {"origin": "http://127.0.0.1:8088", "insecure_http": True}])
            zh = by_id(agent.get_json("/api/v1/diagnostics?lang=zh-CN")[2])["origins.http"]
            self.assertIn("本机的其他用户", zh["detail"])
            self.assertEqual(by_id(json.loads(doctor("--json")))["origins.http"]["status"], "warn")
            self.assertIn("[WARN] Allowed sites over http://", doctor())
            self.assertNotIn("origins.http", by_id(report(origin=portal)))  # the allow-list is not the portal's
        # The demo's way: its own http:// portal accepted knowingly, no warning.
        with harness.Agent(config={"allow_origins": [{"origin": "http://127.0.0.1:8088", "insecure_http": True}]}) as demo:
            status, _, body = demo.get_json("/api/v1/diagnostics?lang=en")
            self.assertEqual(by_id(body)["origins.http"]["status"], "pass")

    def test_version_language_proxy_and_doctor(self):
        self.assertEqual(self.diagnostics("?min_version=9.9.9")["agent.version"]["status"], "fail")
        self.assertEqual(self.diagnostics("?min_version=0.0.1")["agent.version"]["status"], "pass")
        self.assertEqual(self.diagnostics("?min_version=%E2%80%AE")["agent.version"]["status"], "pass")
        self.assertEqual(self.diagnostics(headers={"Accept-Language": "en-US,en;q=0.9"})["pcsc.service"]["title"],
                         "Smart-card service")
        self.assertEqual(self.diagnostics(headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})["pcsc.service"]["title"],
                         "智能卡服务")
        self.assertEqual(self.diagnostics()["pcsc.service"]["title"], "智能卡服务")  # zh-CN by default
        proxied = harness.Agent(env={"https_proxy": "http://proxy.invalid:3128"}).start()
        try:
            self.assertEqual(self.diagnostics(agent=proxied)["network.proxy"]["status"], "warn")
        finally:
            proxied.cleanup()
        exempt = harness.Agent(env={"https_proxy": "http://proxy.invalid:3128", "NO_PROXY": "127.0.0.1,localhost"}).start()
        try:
            self.assertEqual(self.diagnostics(agent=exempt)["network.proxy"]["status"], "pass")
        finally:
            exempt.cleanup()
        # doctor --json: the same checks from the command line, exit 1 on a failure.
        r = subprocess.run([harness.AGENT, "doctor", "--json", "--state-dir", self.agent.state_dir, "--lang", "en"],
                           capture_output=True, text=True, timeout=60, env=self.agent.env)
        report = json.loads(r.stdout)
        self.assertEqual(set(by_id(report)), set(self.diagnostics()))
        self.assertEqual(r.returncode, 1 if report["summary"]["fail"] else 0)
        text = subprocess.run([harness.AGENT, "doctor", "--state-dir", self.agent.state_dir, "--lang", "en"],
                              capture_output=True, text=True, timeout=60, env=self.agent.env).stdout
        self.assertIn("[ OK ] Agent version", text)
        self.assertNotIn("\033[", text)  # no colour when not a terminal
        # agent.tls passes once the CA is in a store.
        run_tool(harness.AGENT, "trust", "install", "--no-system", "--state-dir", self.agent.state_dir,
                 env=self.agent.env)
        self.assertEqual(self.diagnostics()["agent.tls"]["status"], "pass")


if __name__ == "__main__":
    harness.main()
