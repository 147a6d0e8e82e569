"""The web issue's end-to-end tests (issue 6), in Debian's chromium and
firefox-esr driven by puppeteer-core (browser.mjs): a private pcscd with the
virtual card, the agent, and the demo portal, all on loopback in network
and mount namespaces of this test's own. Each browser gets a fresh HOME and
profile into which `ukey-agent trust install` has put the agent's CA: no
certificate-error flags. A second agent and portal serve the 国密 flow: the
soft SKF token (tests/skf) with an SM2 certificate chain (sm2pki.py), logged
in with an SM2-SM3 token that the portal's back end verifies. Screenshots of each state go to
<build>/browser-screenshots/. A missing browser or Node module is a
failure, never a skip."""
import base64
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
import sm2pki  # noqa: E402
from agent import run_tool, terminate, _die_with_parent  # noqa: E402

PIN = "123456"


_GIVEN = set()


def free_port():
    """A free loopback port, never one handed out before in this run: the
    ports are bound later (agents, portals), so the kernel may offer an
    earlier one again until then."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


class Browser:
    """One browser.mjs process: send(cmd, **args) -> value, or AssertionError."""

    def __init__(self, which, home, screenshots, profile=None, args=()):
        node_modules = os.path.join(HERE, "node_modules", "puppeteer-core")
        if not os.path.isdir(node_modules):
            raise AssertionError("puppeteer-core is not installed: run scripts/test (npm ci in tests/browser)")
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "browser.mjs")], cwd=HERE, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        self.version = self.send("launch", timeout=90, browser=which, home=home, screenshots=screenshots,
                                 profile=profile, args=list(args))

    def send(self, cmd, timeout=60, **args):
        self.proc.stdin.write(json.dumps(dict(args, cmd=cmd)) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise AssertionError("the browser did not answer %s within %d s" % (cmd, timeout))
        reply = json.loads(self.proc.stdout.readline() or '{"ok": false, "error": "browser.mjs exited"}')
        if not reply["ok"]:
            raise AssertionError("%s %s: %s" % (cmd, json.dumps(args, ensure_ascii=False)[:300], reply["error"]))
        return reply.get("value")

    def close(self):
        try:
            self.send("close", timeout=30)
        except (AssertionError, OSError, ValueError):
            pass
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        terminate(self.proc, 10)
        try:
            os.killpg(self.proc.pid, 9)  # anything the browser left behind
        except ProcessLookupError:
            pass
        self.proc.stdout.close()


class Portal:
    def __init__(self, log_dir, port, ca_files, crl_files, agent_port, probe_port, legacy=False):
        """The demo portal, or (legacy) the legacy portal of issue 15."""
        binary = os.path.join(os.path.dirname(harness.AGENT), "ukey-legacy-portal" if legacy else "ukey-portal")
        self.url = "http://127.0.0.1:%d" % port
        trust = [a for f in ca_files for a in ("--ca-file", f)] + [a for f in crl_files for a in ("--crl", f)]
        probe = [] if legacy else ["--probe", "http://127.0.0.1:%d" % probe_port]
        # Its log goes to a file, so a refused login's reason can be read.
        self.log = os.path.join(log_dir, "%s-%d.log" % (os.path.basename(binary), port))
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [binary, "--port", str(port), *trust, "--agent", "https://127.0.0.1:%d" % agent_port, *probe],
                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 10
        while "listening" not in self.messages():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                terminate(self.proc)
                raise RuntimeError("%s did not start: %s" % (binary, self.messages()))
            time.sleep(0.05)

    def messages(self):
        with open(self.log) as log:
            return log.read()

    def stop(self):
        terminate(self.proc)


def trusted_home(state_dir, env, firefox):
    """A HOME whose Chromium NSS database (and, for Firefox, a profile)
    holds the agent's CA, put there by `ukey-agent trust install`."""
    home = tempfile.mkdtemp(prefix="ukey-browser-home-")
    profile = None
    if firefox:
        profile = os.path.join(home, ".mozilla", "firefox", "test.default")
        os.makedirs(profile)
        run_tool("certutil", "-N", "-d", "sql:" + profile, "--empty-password")
    run_tool(harness.AGENT, "trust", "install", "--no-system", "--state-dir", state_dir, env=dict(env, HOME=home))
    return home, profile


class Web:
    """Services shared by both browsers' runs."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ukey-browser-")
        self.screens = os.path.join(os.path.dirname(harness.AGENT), "browser-screenshots")
        self.pcscd = pcsc.Pcscd()
        self.pcscd.start()
        self.pki = pcsc.make_pki(self.dir)
        self.crl = pcsc.make_crl(self.dir)
        self.cards = {}
        for name, tries in (("good", 3), ("blocked", 0)):
            self.cards[name] = os.path.join(self.dir, "card-%s.json" % name)
            pcsc.write_card_state(self.cards[name], self.pki, tries=tries)
        self.card = pcsc.VirtualCard(self.pcscd, self.cards["good"]).insert()
        self.agent_port, self.probe_port = free_port(), free_port()
        # Two portals: one keeps the PIN on its page ("pin_entry": "page"), the
        # other has its users type it in the agent's window (the default).
        self.portal_port, self.consent_port = free_port(), free_port()
        self.portal_origin = "http://127.0.0.1:%d" % self.portal_port
        self.consent_origin = "http://127.0.0.1:%d" % self.consent_port
        # The legacy portals (issue 15): old pages over the facades, in page
        # mode with legacy_sign (one beside each agent), without legacy_sign,
        # and in consent mode.
        self.legacy_port, self.sm2_legacy_port = free_port(), free_port()
        self.nosign_legacy_port, self.consent_legacy_port = free_port(), free_port()
        self.agent = self.start_agent()
        ca = os.path.join(self.dir, "ca.pem")
        self.portal = Portal(self.dir, self.portal_port, [ca], [self.crl], self.agent_port, self.probe_port)
        self.consent_portal = Portal(self.dir, self.consent_port, [ca], [self.crl], self.agent_port, self.probe_port)
        # The 国密 flow: an agent with the soft SKF library (same identity, so
        # the browsers trust it too) and a portal trusting the SM2 chain.
        self.sm2 = sm2pki.make_sm2_pki(os.path.join(self.dir, "sm2"), check=False)
        self.skf_state = os.path.join(self.dir, "skf.json")
        sm2pki.write_skf_state(self.skf_state, self.sm2)
        self.sm2_agent_port, self.sm2_probe_port, self.sm2_portal_port = free_port(), free_port(), free_port()
        self.sm2_agent = self.start_sm2_agent()
        self.sm2_portal = Portal(self.dir, self.sm2_portal_port, [self.sm2.chain, self.sm2.rsa_chain],
                                 [self.sm2.crl, self.sm2.rsa_crl], self.sm2_agent_port, self.sm2_probe_port)
        self.legacy = Portal(self.dir, self.legacy_port, [ca], [self.crl], self.agent_port, 0, legacy=True)
        self.sm2_legacy = Portal(self.dir, self.sm2_legacy_port, [self.sm2.chain, self.sm2.rsa_chain],
                                 [self.sm2.crl, self.sm2.rsa_crl], self.sm2_agent_port, 0, legacy=True)
        self.nosign_legacy = Portal(self.dir, self.nosign_legacy_port, [ca], [self.crl], self.agent_port, 0,
                                    legacy=True)
        self.consent_legacy = Portal(self.dir, self.consent_legacy_port, [ca], [self.crl], self.agent_port, 0,
                                     legacy=True)

    def start_agent(self, state_dir=None):
        return harness.Agent(args=["--port", str(self.agent_port), "--probe-port", str(self.probe_port),
                                   "--ca-file", os.path.join(self.dir, "ca.pem")],
                             config={"allow_origins": [{"origin": self.portal_origin, "pin_entry": "page"},
                                                       self.consent_origin, self.legacy_entry(self.legacy_port),
                                                       {"origin": "http://127.0.0.1:%d" % self.nosign_legacy_port,
                                                        "pin_entry": "page"},
                                                       {"origin": "http://127.0.0.1:%d" % self.consent_legacy_port,
                                                        "legacy_sign": True}]},
                             state_dir=state_dir).start()

    @staticmethod
    def legacy_entry(port):
        return {"origin": "http://127.0.0.1:%d" % port, "pin_entry": "page", "legacy_sign": True}

    def start_sm2_agent(self):
        softskf = os.environ.get("UKEY_SOFTSKF")
        if not softskf or not os.path.exists(softskf):
            raise AssertionError("the soft SKF library is missing (UKEY_SOFTSKF=%r): build the tests" % softskf)
        return harness.Agent(args=["--port", str(self.sm2_agent_port), "--probe-port", str(self.sm2_probe_port),
                                   "--ca-file", self.sm2.anchors, "--skf-module", softskf],
                             config={"allow_origins": [{"origin": "http://127.0.0.1:%d" % self.sm2_portal_port,
                                                        "pin_entry": "page"}, self.legacy_entry(self.sm2_legacy_port)]},
                             state_dir=self.agent.state_dir, env={"SOFTSKF_STATE": self.skf_state}).start()

    def swap_card(self, name):
        self.card.remove()
        self.card = pcsc.VirtualCard(self.pcscd, self.cards[name]).insert()

    def close(self):
        self.portal.stop()
        self.consent_portal.stop()
        self.sm2_portal.stop()
        for portal in (self.legacy, self.sm2_legacy, self.nosign_legacy, self.consent_legacy):
            portal.stop()
        self.sm2_agent.cleanup()
        self.agent.cleanup()
        self.card.remove()
        self.pcscd.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


WEB = None


def setUpModule():
    global WEB
    for exe in ("/usr/bin/chromium", "/usr/bin/firefox-esr", "/usr/bin/node"):
        if not os.access(exe, os.X_OK):
            raise AssertionError("%s is missing: scripts/bootstrap installs it" % exe)
    WEB = Web()


def tearDownModule():
    if WEB:
        WEB.close()


class Flow:
    """The scenario, run once per browser (subclasses set BROWSER)."""
    BROWSER = None

    @classmethod
    def setUpClass(cls):
        cls.home, cls.profile = trusted_home(WEB.agent.state_dir, WEB.agent.env, cls.BROWSER == "firefox")
        cls.b = Browser(cls.BROWSER, cls.home, WEB.screens, profile=cls.profile)

    @classmethod
    def tearDownClass(cls):
        cls.b.close()
        shutil.rmtree(cls.home, ignore_errors=True)

    def page_sees_blocked_pin(self):
        """The diagnostic page after the blocked card came: its list and
        then its checks (which end the redraws a card's arrival causes)."""
        self.b.send("waitFor", selector="#readers", text="PIN 已锁定")
        self.b.send("waitFor", selector="#check-pin-state", text="PIN 已锁定", timeout=30000)

    def consent_window_closed(self):
        """Waits (15 s at most) for the agent's window to close after a
        confirmation, then acts on the page that opened it again."""
        deadline = time.monotonic() + 15
        while not self.b.send("closed") and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertTrue(self.b.send("closed"), "the consent window did not close")
        self.b.send("mainPage")

    def shot(self, name):
        self.b.send("screenshot", name=name)

    def open_portal(self):
        self.b.send("goto", url=WEB.portal.url + "/")
        self.b.send("waitFor", selector="#agent-state", text="正在运行")
        self.b.send("waitFor", selector="#token", text="张三")

    def login(self, pin):
        self.b.send("type", selector="#pin", text=pin)
        self.b.send("click", selector="#submit")

    def test_1_diagnostic_page(self):
        status = self.b.send("goto", url="https://127.0.0.1:%d/" % WEB.agent_port)
        self.assertEqual(status, 200)  # a trusted certificate: no interstitial
        self.b.send("waitFor", selector="#readers", text="张三")
        self.b.send("waitFor", selector="#readers", text="还剩")         # the validity countdown
        self.b.send("waitFor", selector="#readers", text="PIN 剩余 3 次")
        self.b.send("waitFor", selector="#checks", text="智能卡服务")     # every check, in Chinese
        self.b.send("waitFor", selector="#check-cert-revoked", text="证书吊销状态")
        # Which sites may use the agent, and where their users type the PIN.
        self.b.send("waitFor", selector="#sites", text=WEB.consent_origin)
        sites = self.b.send("text", selector="#sites")
        self.assertIn(WEB.portal_origin + "PIN 码在网站页面中输入", sites)
        self.assertIn(WEB.consent_origin + "PIN 码在助手的确认窗口中输入", sites)
        # Allowed http:// sites are warned about, with the fix (issue 17, W12): a local user can take the port.
        self.b.send("waitFor", selector="#check-origins-http", text="本机的其他用户")
        self.b.send("waitFor", selector="#check-origins-http", text="insecure_http")
        self.shot("diagnostic-page")
        # Switchable to English, and back.
        self.b.send("click", selector="#lang")
        self.b.send("waitFor", selector="#checks", text="Smart-card service")
        self.b.send("waitFor", selector="#checks-title", text="Diagnostic checks")
        self.shot("diagnostic-page-en")
        self.b.send("click", selector="#lang")
        self.b.send("waitFor", selector="#checks", text="智能卡服务")
        # The test login: the card signs, the page verifies with WebCrypto.
        self.b.send("waitFor", selector="#test-cert", text="张三")
        self.b.send("type", selector="#test-pin", text=PIN)
        self.b.send("click", selector="#test-login")
        self.b.send("waitFor", selector="#test-result", text="签名验证通过", timeout=30000)
        self.shot("diagnostic-test-login")
        # The redacted report for the help desk.
        self.b.send("click", selector="#download-report")
        self.b.send("waitFor", selector="#report-state", text="诊断报告已下载")
        report = self.b.send("eval", body="""
            const r = await fetch("/api/v1/diagnostics?mask_names=1");
            return JSON.stringify(await r.json());""")
        self.assertNotIn("张三", report)
        self.assertIn("张*", report)
        # Unplugging the card updates the page without a reload.
        WEB.card.remove()
        self.b.send("waitFor", selector="#readers", text="张三", gone=True)
        self.shot("diagnostic-page-unplugged")
        WEB.card = pcsc.VirtualCard(WEB.pcscd, WEB.cards["good"]).insert()
        self.b.send("waitFor", selector="#readers", text="张三")

    def test_2_portal_login(self):
        self.open_portal()
        self.login(PIN)
        self.b.send("waitFor", selector="#who", text="张三")
        self.shot("portal-logged-in")
        self.b.send("click", selector="#logout")
        self.b.send("waitFor", selector="#message", text="已退出")

    def test_3_wrong_pin(self):
        self.open_portal()
        self.login("000000")
        self.b.send("waitFor", selector="#message", text="PIN 码错误，还剩 2 次机会")
        self.shot("portal-wrong-pin")
        self.login(PIN)  # the right PIN resets the counter
        self.b.send("waitFor", selector="#who", text="张三")
        self.b.send("click", selector="#logout")

    def test_4_blocked_token(self):
        WEB.swap_card("blocked")
        try:
            self.open_portal()
            self.login(PIN)
            self.b.send("waitFor", selector="#message", text="PIN 已锁定")
            self.assertFalse(self.b.send("hidden", selector="#agent-help"))  # the way to unblock
            self.shot("portal-blocked")
        finally:
            WEB.swap_card("good")

    def test_5_agent_stopped(self):
        WEB.agent.stop()
        try:
            self.b.send("goto", url=WEB.portal.url + "/")
            self.b.send("waitFor", selector="#agent-state", text="没有检测到证书助手")
            self.assertEqual(self.b.send("attr", selector="#agent-state", name="data-state"), "not-running")
            self.shot("portal-agent-not-running")
        finally:
            WEB.agent = WEB.start_agent(state_dir=WEB.agent.state_dir)
        self.open_portal()

    def test_6_untrusted_certificate(self):
        home = tempfile.mkdtemp(prefix="ukey-browser-untrusted-")
        profile = None
        if self.BROWSER == "firefox":
            profile = os.path.join(home, "profile")
            os.makedirs(profile)
        other = Browser(self.BROWSER, home, WEB.screens, profile=profile)
        try:
            other.send("goto", url=WEB.portal.url + "/")
            other.send("waitFor", selector="#agent-state", text="浏览器不信任它的本地证书")
            self.assertEqual(other.send("attr", selector="#agent-state", name="data-state"), "untrusted-certificate")
            other.send("screenshot", name="portal-untrusted-certificate")
        finally:
            other.close()
            shutil.rmtree(home, ignore_errors=True)

    def test_7_other_origin_reads_nothing(self):
        # http://localhost:PORT is another origin than the allowed http://127.0.0.1:PORT.
        self.b.send("goto", url="http://localhost:%d/" % WEB.portal_port)
        result = self.b.send("eval", body="""
            const out = {};
            for (const [name, url] of [["tokens", "https://127.0.0.1:%d/api/v1/tokens"],
                                       ["status", "https://127.0.0.1:%d/api/v1/status"],
                                       ["probe", "http://127.0.0.1:%d/probe"]]) {
              try { const r = await fetch(url); out[name] = "read " + r.status + " " + (await r.text()).slice(0, 80); }
              catch (e) { out[name] = "refused"; }
            }
            return out;""" % (WEB.agent_port, WEB.agent_port, WEB.probe_port))
        self.assertEqual(result, {"tokens": "refused", "status": "refused", "probe": "refused"})
        self.b.send("waitFor", selector="#agent-state", text="没有检测到证书助手")


    # --- issue 9: the agent's consent window ---------------------------------

    def open_consent_portal(self):
        self.b.send("goto", url=WEB.consent_portal.url + "/")
        self.b.send("waitFor", selector="#agent-state", text="正在运行")
        self.b.send("waitFor", selector="#token", text="张三")
        self.assertTrue(self.b.send("hidden", selector="#pin-row"))      # no PIN field on the portal
        self.assertFalse(self.b.send("hidden", selector="#consent-note"))
        # Everything the portal's own scripts could see: every event and
        # message on the page, and its storage.
        self.b.send("eval", body="""
            window.__seen = [];
            for (const type of ["input", "keydown", "keyup", "change", "message", "storage", "paste"])
              window.addEventListener(type, (e) => window.__seen.push(type + ":" + (e.key || e.data || (e.target && e.target.value) || "")), true);
            return true;""")

    def portal_saw(self):
        return json.dumps(self.b.send("eval", body="""
            return {seen: window.__seen, local: JSON.stringify(localStorage), session: JSON.stringify(sessionStorage),
                    cookie: document.cookie, html: document.documentElement.outerHTML};"""))

    def test_9a_consent_window(self):
        self.open_consent_portal()
        self.b.send("click", selector="#submit")
        url = self.b.send("popup", url="/consent.html")
        self.assertTrue(url.startswith("https://127.0.0.1:%d/consent.html" % WEB.agent_port), url)
        self.b.send("waitFor", selector="#origin", text=WEB.consent_origin)
        # The request id has left the address bar (and so any later Referer or history).
        self.assertEqual(self.b.send("eval", body="return location.href;"),
                         "https://127.0.0.1:%d/consent.html" % WEB.agent_port)
        # Cross-Origin-Opener-Policy (review 2.13, W10): the portal that opened the
        # window has no handle to it; the SDK still hears the result from the agent below.
        self.assertTrue(self.b.send("eval", body="return window.opener === null;"))
        # A user who takes a few seconds: the portal's severed handle reads
        # popup.closed === true, which the SDK must not take for a closed window.
        time.sleep(4)
        self.b.send("waitFor", selector="#cert", text="张三")
        self.b.send("waitFor", selector="#retries", text="PIN 剩余 3 次")
        self.shot("consent-window-zh")
        self.b.send("click", selector="#lang")
        self.b.send("waitFor", selector="#asking", text="This site asks to log in")
        self.b.send("waitFor", selector="#countdown", text="Confirm within", timeout=500)  # at once, not at the next tick
        self.shot("consent-window-en")
        self.b.send("click", selector="#lang")
        # A wrong PIN: the window says how many tries are left, and stays.
        self.b.send("type", selector="#pin", text="000000")
        self.b.send("click", selector="#submit")
        self.b.send("waitFor", selector="#message", text="还剩 2 次")
        self.shot("consent-window-wrong-pin")
        self.b.send("type", selector="#pin", text=PIN)
        self.b.send("click", selector="#submit")
        self.consent_window_closed()
        self.b.send("waitFor", selector="#who", text="张三")   # the portal's back end verified the token
        self.shot("consent-portal-logged-in")
        seen = self.portal_saw()
        for pin in (PIN, "000000"):
            self.assertNotIn(pin, seen)
        self.b.send("click", selector="#logout")

    def test_9b_consent_cancel(self):
        self.open_consent_portal()
        self.b.send("click", selector="#submit")
        self.b.send("popup", url="/consent.html")
        self.b.send("waitFor", selector="#cert", text="张三")
        self.b.send("click", selector="#cancel")
        self.b.send("mainPage")
        self.b.send("waitFor", selector="#message", text="取消")
        self.shot("consent-cancelled")

    def consent_calls(self, n):
        """The outcomes of the first `n` consent calls the double-click
        button made, once they are all in (the SDK polls every 0.6 s)."""
        deadline = time.monotonic() + 20
        while True:
            calls = self.b.send("eval", body="return window.__calls;")
            if (len(calls) >= n and all(calls[:n])) or time.monotonic() > deadline:
                return calls[:n]
            time.sleep(0.2)

    def queue_challenge(self):
        """A fresh challenge from the portal's back end for the button's next
        call; the back end keeps one per session, so the newest counts."""
        self.b.send("eval", body="""
            const r = await fetch("/api/challenge", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
            window.__challenges.push((await r.json()).challenge);
            return true;""")

    def back_end_accepts(self, token):
        return self.b.send("eval", body="""
            const r = await fetch("/api/login", {method: "POST", headers: {"Content-Type": "application/json"},
                                                 body: JSON.stringify({token: %s})});
            const j = await r.json();
            await fetch("/api/logout", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
            return j.logged_in === true;""" % json.dumps(token))

    def test_9d_consent_double_click(self):
        """A portal whose login button stays enabled, clicked twice. Before
        the agent's page has loaded, both calls share the one window; after,
        its Cross-Origin-Opener-Policy has cut the portal off and a second
        window opens. Either way the newer call gets the login (the newest
        challenge, which the back end holds), the older rejects with
        CONSENT_REPLACED, and the older window, if any, signs nothing."""
        # Earlier tests' windows close a moment after they end.
        deadline = time.monotonic() + 10
        while self.b.send("windowCount", url="/consent.html") and time.monotonic() < deadline:
            time.sleep(0.2)
        self.open_consent_portal()
        self.b.send("eval", body="""
            window.__calls = [];
            window.__challenges = [];
            const b = document.createElement("button");
            b.id = "again";
            b.type = "button";
            b.textContent = "log in (stays enabled)";
            // One call per queued challenge, in this click.
            b.onclick = () => {
              while (window.__challenges.length) {
                const i = window.__calls.push(null) - 1;
                UKeyAgent.authenticate(window.__challenges.shift(), {mode: "consent"}).then(
                  (token) => { window.__calls[i] = {token: token}; }, (e) => { window.__calls[i] = {code: e.code}; });
              }
            };
            document.body.appendChild(b);
            return true;""")
        # The second call before the agent's page has loaded (as a double
        # click's): one window, the first call replaced.
        self.queue_challenge()
        self.queue_challenge()
        self.b.send("click", selector="#again")
        self.b.send("popup", url="/consent.html")
        self.b.send("waitFor", selector="#cert", text="张三")
        self.assertEqual(self.b.send("windowCount", url="/consent.html"), 1)
        self.b.send("type", selector="#pin", text=PIN)
        self.b.send("click", selector="#submit")
        self.consent_window_closed()
        first, second = self.consent_calls(2)
        self.assertEqual(first, {"code": "CONSENT_REPLACED"})
        self.assertIn("token", second, second)
        self.assertTrue(self.back_end_accepts(second["token"]))
        # A second click once the window has loaded: a second window; the
        # first is withdrawn and says so when used.
        self.queue_challenge()
        self.b.send("click", selector="#again")
        self.b.send("popup", url="/consent.html")
        self.b.send("waitFor", selector="#cert", text="张三")
        self.b.send("mainPage")
        self.queue_challenge()
        self.b.send("click", selector="#again")
        self.b.send("popup", url="/consent.html")
        self.b.send("waitFor", selector="#cert", text="张三")
        self.assertEqual(self.b.send("windowCount", url="/consent.html"), 2)
        self.b.send("usePopup", ago=1)
        self.b.send("type", selector="#pin", text=PIN)
        self.b.send("click", selector="#submit")
        self.b.send("waitFor", selector="#message", text="取代")
        self.shot("consent-window-replaced")
        self.consent_window_closed()
        # The older window reached no card: no PIN try was spent.
        self.assertEqual(self.b.send("eval", body="return (await UKeyAgent.listTokens()).tokens[0].pin.retries_left;"), 3)
        self.b.send("usePopup", ago=0)
        self.b.send("type", selector="#pin", text=PIN)
        self.b.send("click", selector="#submit")
        self.consent_window_closed()
        _, _, third, fourth = self.consent_calls(4)
        self.assertEqual(third, {"code": "CONSENT_REPLACED"})
        self.assertIn("token", fourth, fourth)
        self.assertTrue(self.back_end_accepts(fourth["token"]))

    def test_9c_consent_window_cannot_be_framed(self):
        import http.server
        import threading
        agent = "https://127.0.0.1:%d" % WEB.agent_port
        pages = {
            "/frame": '<!doctype html><input id="pin">',    # may be framed: the control
            "/control": '<!doctype html><iframe src="/frame"></iframe>',
            "/attack": '<!doctype html><iframe src="%s/consent.html#%s"></iframe><iframe src="%s/"></iframe>'
                       % (agent, "0" * 64, agent),
        }

        class Pages(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = "http://127.0.0.1:%d" % server.server_address[1]
        try:
            self.b.send("goto", url=base + "/control")
            time.sleep(1)
            self.assertTrue(self.b.send("frameHas", selector="#pin"), self.b.send("frameUrls"))
            self.b.send("goto", url=base + "/attack")
            time.sleep(2)
            self.assertFalse(self.b.send("frameHas", selector="#pin"), self.b.send("frameUrls"))
            self.assertFalse(self.b.send("frameHas", selector="#readers"))
            self.shot("consent-framing-refused")
        finally:
            server.shutdown()
            server.server_close()


    # --- issue 14: a 国密 UKey (SM2, through an SKF library) -----------------

    def skf_token(self):
        """Picks the soft SKF token in the page's token list (the virtual PIV
        card may be listed beside it); its id."""
        return self.b.send("eval", body="""
            const s = document.getElementById("token");
            const o = [...s.options].find((o) => o.value.startsWith("skf-"));
            if (!o) return null;
            s.value = o.value;
            return o.value;""")

    def test_10_sm2_token_portal_login(self):
        portal = "http://127.0.0.1:%d/" % WEB.sm2_portal_port
        self.b.send("goto", url=portal)
        self.b.send("waitFor", selector="#agent-state", text="正在运行")
        self.b.send("waitFor", selector="#token", text="SKF")
        self.assertTrue(self.skf_token())
        self.login("000000")
        self.b.send("waitFor", selector="#message", text="PIN 码错误，还剩 5 次机会")
        self.shot("sm2-portal-wrong-pin")
        self.skf_token()
        self.login(PIN)
        # The portal's back end (libukeyverify) verified an SM2-SM3 token
        # over the 3-level SM2 chain and the SM2-signed CRL.
        self.b.send("waitFor", selector="#who", text="张三")
        self.shot("sm2-portal-logged-in")
        self.b.send("click", selector="#logout")
        self.b.send("waitFor", selector="#message", text="已退出")

    def legacy_login(self, portal, page, pin, certificate=None):
        """Opens an old login page of a legacy portal, picks in the SOF list
        the certificate (token id prefix, GetCertInfo key type), logs in."""
        self.b.send("goto", url=portal.url + "/" + page)
        if certificate:
            self.b.send("waitFor", selector="#UserList option")
            self.assertTrue(self.b.send("eval", body="""
                const [token, type] = %s, sel = document.getElementById("UserList");
                for (const o of sel.options)
                    if (o.value.startsWith(token) && SOF_GetCertInfo(SOF_ExportUserCert(o.value), 3) === type) {
                        sel.value = o.value;
                        return true;
                    }
                return false;""" % json.dumps(certificate)))
        self.b.send("type", selector="#pin", text=pin)
        self.b.send("click", selector="#login")

    def test_12_legacy_pages_login(self):
        """The old SafeEngine and SOF pages (only their include changed) log
        in with the virtual PIV card (ECDSA P-256) and the soft SKF token
        (SM2, and RSA when the SOF page's list picks it); the legacy portal's
        back end verified the raw signature over its random with the
        certificate's chain (登录成功, the CN, and the algorithm in its log)."""
        for portal, page, certificate, algorithm in (
                (WEB.legacy, "safeengine.html", None, "ES256"), (WEB.legacy, "sof.html", None, "ES256"),
                (WEB.sm2_legacy, "safeengine.html", None, "SM2-SM3"), (WEB.sm2_legacy, "sof.html", None, "SM2-SM3"),
                (WEB.sm2_legacy, "sof.html", ("skf-", "rsa"), "RS256")):
            with self.subTest(portal=portal.url, page=page, algorithm=algorithm):
                self.legacy_login(portal, page, PIN, certificate)
                try:
                    self.b.send("waitFor", selector="h1", text="登录成功", timeout=30000)
                except AssertionError as e:
                    raise AssertionError("%s\nthe legacy portal's log:\n%s" % (e, portal.messages())) from None
                self.b.send("waitFor", selector="#result", text="张三")
                self.assertTrue(portal.messages().rstrip().endswith(", %s)" % algorithm), portal.messages())
                self.assertEqual(self.b.send("dialogs"), [])
        self.shot("legacy-logged-in")

    def test_13_legacy_pages_refusals(self):
        """What an old page shows when the agent refuses: a wrong PIN (the
        old codes and the tries left, by alert() too), and a site whose entry
        lacks legacy_sign (SIGN_NOT_ALLOWED's old code, nothing signed)."""
        self.legacy_login(WEB.legacy, "safeengine.html", "000000")
        self.b.send("waitFor", selector="#result", text="密码错误，还可以尝试 2 次")
        self.assertEqual(self.b.send("dialogs"), ["密码错误，还可以尝试 2 次。\nWrong PIN, 2 tries left."])
        self.shot("legacy-safeengine-wrong-pin")
        self.legacy_login(WEB.legacy, "safeengine.html", PIN)   # the right PIN resets the counter
        self.b.send("waitFor", selector="h1", text="登录成功", timeout=30000)
        self.legacy_login(WEB.sm2_legacy, "sof.html", "000000", ("skf-", "sm2"))
        self.b.send("waitFor", selector="#result", text="登录失败，错误码：%d，剩余重试次数：5" % 0x0B000101)  # SOR_PinErr
        self.assertEqual(len(self.b.send("dialogs")), 1)
        self.legacy_login(WEB.sm2_legacy, "sof.html", PIN, ("skf-", "sm2"))
        self.b.send("waitFor", selector="h1", text="登录成功", timeout=30000)
        # legacy_sign off: the PIN is checked, the signature refused.
        self.legacy_login(WEB.nosign_legacy, "safeengine.html", PIN)
        self.b.send("waitFor", selector="#result", text="签名失败，错误码：-2113601528")
        self.assertEqual(len(self.b.send("dialogs")), 1)
        self.shot("legacy-sign-not-allowed")
        self.assertNotIn("登录成功", WEB.nosign_legacy.messages())

    def test_14_sign_in_consent_window(self):
        """A consent-mode site with legacy_sign: the facade's Async twin opens
        the agent's window, which shows 签名请求, the site and the text to be
        signed before the PIN; the signature verifies with the certificate
        (ukey-verify --signature)."""
        text = "同意转账 100 元 / I agree to pay 100"
        self.b.send("goto", url=WEB.consent_legacy.url + "/sof.html")
        self.b.send("waitFor", selector="#UserList option")
        self.b.send("eval", body="""
            const id = document.getElementById("UserList").value;
            window.__cert = SOF_ExportUserCert(id);
            await SOF.SOF_LoginAsync(id, "");
            SOF.SOF_SignDataAsync(id, %s).then((s) => { window.__sig = s; }, (e) => { window.__sig = "error " + e; });
            return true;""" % json.dumps(text))
        self.b.send("popup", url="/consent.html")
        self.b.send("waitFor", selector="h1", text="签名请求")
        self.b.send("waitFor", selector="#origin", text=WEB.consent_legacy.url)
        self.b.send("waitFor", selector="#signed", text=text)
        self.b.send("waitFor", selector="#cert", text="张三")
        self.shot("consent-window-sign")
        self.b.send("type", selector="#pin", text=PIN)
        self.b.send("click", selector="#submit")
        self.consent_window_closed()
        deadline = time.monotonic() + 15
        while not self.b.send("eval", body="return window.__sig || null;") and time.monotonic() < deadline:
            time.sleep(0.2)
        sig, cert = self.b.send("eval", body="return [window.__sig, window.__cert];")
        self.assertFalse(sig.startswith("error"), sig)
        files = {}
        for name, content in (("sig", base64.b64decode(sig)), ("cert", cert.encode()), ("data", text.encode())):
            files[name] = os.path.join(WEB.dir, "consent-sign." + name)
            with open(files[name], "wb") as f:
                f.write(content)
        verify = os.path.join(os.path.dirname(harness.AGENT), "ukey-verify")
        out = run_tool(verify, "--signature", files["sig"], "--cert", files["cert"], "--data", files["data"],
                       "--ca-file", os.path.join(WEB.dir, "ca.pem"), "--crl", WEB.crl)
        self.assertIn("张三", out.stdout)

    def test_15_diagnostic_page_details_and_pin(self):
        """The old client's home: the certificate's details (subject fields,
        the ID-card number extension, key usage) and "verify the PIN"."""
        self.b.send("goto", url="https://127.0.0.1:%d/" % WEB.agent_port)
        self.b.send("waitFor", selector="#readers .cert-details", timeout=30000)
        self.b.send("eval", body="document.querySelectorAll('#readers details').forEach((d) => { d.open = true; }); return true;")
        self.b.send("waitFor", selector="#readers .cert-details dl", text="名称张三")
        self.b.send("waitFor", selector="#readers", text="身份证号码" + pcsc.TEST_ID_NUMBER)
        self.b.send("waitFor", selector="#readers .cert-details dl", text="数字签名")
        pin = "#readers .verify-pin input[type=password]"
        self.b.send("type", selector=pin, text="000000")
        self.b.send("click", selector="#readers .verify-pin button")
        self.b.send("waitFor", selector="#readers .verify-pin p.error", text="还剩 2 次")
        self.b.send("type", selector=pin, text=PIN)
        self.b.send("click", selector="#readers .verify-pin button")
        self.b.send("waitFor", selector="#readers .verify-pin p.ok", text="PIN 码正确")
        self.shot("diagnostic-page-details")
        # A blocked PIN: the page unblocks it with the PUK (a wrong PUK first).
        WEB.swap_card("blocked")
        try:
            self.page_sees_blocked_pin()
            self.b.send("eval", body="document.querySelector('#readers details.unblock').open = true; return true;")
            for puk, answer in (("87654321", "p.error"), ("12345678", None)):
                self.b.send("type", selector="#readers .unblock input[id^=puk-]", text=puk)
                self.b.send("type", selector="#readers .unblock input[id^=newPin-]", text=PIN)
                self.b.send("click", selector="#readers .unblock button")
                if answer == "p.error":
                    self.b.send("waitFor", selector="#readers .unblock p.error", text="(2)")
            self.b.send("waitFor", selector="#tokens-state", text="已解锁")
            self.b.send("waitFor", selector="#readers", text="PIN 剩余 3 次")
        finally:
            pcsc.write_card_state(WEB.cards["blocked"], WEB.pki, tries=0)
            WEB.swap_card("good")

    def test_16_diagnostic_page_profile_and_reminder(self):
        """With the test CA's deployment profile (a reminder window longer
        than the card's certificate has left): the page shows the reminder
        with the renewal link, the issuer's hotline and links, and the
        certificate check's fix points to the renewal page."""
        profile = os.path.join(WEB.dir, "test-ca-profile.json")
        with open(profile, "w") as f:
            json.dump({"id": "test-ca", "name": {"zh-CN": "测试发证机构", "en": "Test issuer"}, "hotline": "962600",
                       "issuers": [{"subject": "CN=ukey test CA, O=ukey-agent tests"}], "reminder_days": 365,
                       "service_points_url": "https://ca.example.gov.cn/points",
                       "links": {"renew": "https://ca.example.gov.cn/renew", "unlock": "https://ca.example.gov.cn/unlock"}},
                      f, ensure_ascii=False)
        port, probe = free_port(), free_port()
        agent = harness.Agent(args=["--port", str(port), "--probe-port", str(probe),
                                    "--ca-file", os.path.join(WEB.dir, "ca.pem")],
                              config={"profile_dirs": [], "profiles": [profile]},
                              state_dir=WEB.agent.state_dir).start()
        try:
            self.b.send("goto", url="https://127.0.0.1:%d/" % port)
            self.b.send("waitFor", selector="#reminders", text="证书“张三”将在")
            self.assertEqual(self.b.send("eval", body="return document.querySelector('#reminders a').href;"),
                             "https://ca.example.gov.cn/renew")
            self.b.send("waitFor", selector="#profiles", text="测试发证机构")
            self.b.send("waitFor", selector="#profiles", text="客服热线 962600")
            self.b.send("waitFor", selector="#readers .service", text="发证机构服务: 测试发证机构")
            self.b.send("waitFor", selector="#check-cert-validity .fix", text="962600")
            self.assertEqual(self.b.send("eval", body="return document.querySelector('#check-cert-validity .fix a').href;"),
                             "https://ca.example.gov.cn/renew")
            self.shot("diagnostic-page-profile")
            # A blocked PIN: the unblock link beside the form, and a wrong
            # PUK's answer names the issuer's hotline and page.
            WEB.swap_card("blocked")
            self.page_sees_blocked_pin()
            self.assertIn("https://ca.example.gov.cn/unlock", self.b.send(
                "eval", body="return [...document.querySelectorAll('#readers .service a')].map((a) => a.href);"))
            self.b.send("eval", body="document.querySelector('#readers details.unblock').open = true; return true;")
            self.b.send("type", selector="#readers .unblock input[id^=puk-]", text="87654321")
            self.b.send("type", selector="#readers .unblock input[id^=newPin-]", text=PIN)
            self.b.send("click", selector="#readers .unblock button")
            self.b.send("waitFor", selector="#readers .unblock p.error", text="测试发证机构 · 客服热线 962600")
            self.assertEqual(self.b.send("eval", body="return document.querySelector('#readers .unblock p.error a').href;"),
                             "https://ca.example.gov.cn/unlock")
        finally:
            pcsc.write_card_state(WEB.cards["blocked"], WEB.pki, tries=0)
            WEB.swap_card("good")
            agent.cleanup()

    def test_11_sm2_token_diagnostic_page(self):
        self.b.send("goto", url="https://127.0.0.1:%d/" % WEB.sm2_agent_port)
        self.b.send("waitFor", selector="#readers", text="SKF")
        self.b.send("waitFor", selector="#readers", text="SM2")        # the key type of its certificates
        self.b.send("waitFor", selector="#check-skf-modules", text="32")  # the library's ABI
        chosen = self.b.send("eval", body="""
            const s = document.getElementById("test-cert");
            const o = [...s.options].find((o) => o.value.startsWith("skf-") && o.value.endsWith("|c0s"));
            if (!o) return null;
            s.value = o.value;
            return o.value;""")
        self.assertTrue(chosen)
        self.b.send("type", selector="#test-pin", text=PIN)
        self.b.send("click", selector="#test-login")
        self.b.send("waitFor", selector="#test-result", text="按国密标准验证", timeout=30000)
        self.shot("sm2-diagnostic-test-login")


class Chromium(Flow, unittest.TestCase):
    BROWSER = "chromium"

    def test_8_local_network_access(self):
        # The portal counts as a public site: its calls to loopback need the
        # user's Local Network Access permission.
        home, _ = trusted_home(WEB.agent.state_dir, WEB.agent.env, False)
        b = Browser("chromium", home, WEB.screens,
                    args=["--ip-address-space-overrides=127.0.0.1:%d=public" % WEB.portal_port])
        try:
            b.send("permission", origin=WEB.portal_origin, setting="granted")
            b.send("goto", url=WEB.portal.url + "/")
            b.send("waitFor", selector="#agent-state", text="正在运行")
            b.send("waitFor", selector="#token", text="张三")
            b.send("type", selector="#pin", text=PIN)
            b.send("click", selector="#submit")
            b.send("waitFor", selector="#who", text="张三")
            b.send("screenshot", name="lna-granted")
            b.send("click", selector="#logout")
            b.send("permission", origin=WEB.portal_origin, setting="denied")
            b.send("goto", url=WEB.portal.url + "/")
            b.send("waitFor", selector="#agent-state", text="浏览器禁止本网站访问证书助手")
            self.assertEqual(b.send("attr", selector="#agent-state", name="data-state"), "blocked-by-browser")
            b.send("screenshot", name="lna-denied")
        finally:
            b.close()
            shutil.rmtree(home, ignore_errors=True)


class Firefox(Flow, unittest.TestCase):
    BROWSER = "firefox"


if __name__ == "__main__":
    harness.main()
