"""Logins confirmed in the agent's own window (issue 9), at the API level:
a pending login bound to the portal's origin and challenge, the window's
routes open to the agent's own pages only, one answer per request, wrong
PIN / cancel / timeout / replay, and the per-origin pin_entry policy.
(The window itself, in real browsers: tests/browser/test_browser.py.)"""
import base64
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
from agent import run_tool  # noqa: E402

PORTAL = "https://portal.gov.example"       # consent (the default)
LEGACY = "https://legacy.gov.example"       # "pin_entry": "page"
CHALLENGE = base64.b64encode(os.urandom(32)).decode()
JSON = {"Content-Type": "application/json"}


class ConsentBase(pcsc.CardCase):
    """The agent, the card and the requests a portal and the window make."""
    agent_config = {"allow_origins": [PORTAL, {"origin": LEGACY, "pin_entry": "page"}],
                    "limits": {"consent_timeout_s": 120}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.self_origin = "https://127.0.0.1:%d" % cls.agent.port

    def write_state(self, path):
        pcsc.write_card_state(path, self.pki)

    def call(self, method, path, body=None, origin=PORTAL, site=None, agent=None):
        headers = dict(JSON) if body is not None else {}
        if origin:
            headers["Origin"] = origin
        if site:
            headers["Sec-Fetch-Site"] = site
        status, hdrs, raw = (agent or self.agent).request(method, path, headers,
                                                          None if body is None else json.dumps(body))
        return status, hdrs, json.loads(raw) if raw else None

    def window(self, method, path, body=None):
        """A request from the consent page itself (the agent's own origin)."""
        return self.call(method, path, body, origin=self.self_origin if method == "POST" else None,
                         site="same-origin")

    def pending(self, origin=PORTAL, challenge=CHALLENGE):
        status, _, r = self.call("POST", "/api/v1/login", {"challenge": challenge, "consent": True}, origin=origin)
        self.assertEqual(status, 202, r)
        self.assertEqual(len(r["request"]), 64)
        self.assertEqual(r["consent_url"], "https://127.0.0.1:%d/consent.html#%s" % (self.agent.port, r["request"]))
        return r["request"]


class Consent(ConsentBase):
    def test_the_whole_flow(self):
        rid = self.pending()
        # The portal waits.
        status, _, r = self.call("GET", "/api/v1/login/" + rid)
        self.assertEqual((status, r["state"]), (202, "pending"))
        # The window shows the origin, the certificate and the retries.
        status, hdrs, info = self.window("GET", "/api/v1/consent/" + rid)
        self.assertEqual(status, 200, info)
        self.assertEqual(info["origin"], PORTAL)
        self.assertEqual(info["certificate"]["subject_cn"], "张三")
        self.assertEqual(info["pin"]["retries_left"], 3)
        self.assertIsNone(hdrs.get("Access-Control-Allow-Origin"))
        # A wrong PIN: the window shows the retries, the request stays pending.
        status, _, r = self.window("POST", "/api/v1/consent/" + rid, {"pin": "000000"})
        self.assertEqual((status, r["error"]["code"], r["error"]["retries_left"]), (403, "PIN_INCORRECT", 2))
        self.assertEqual(self.call("GET", "/api/v1/login/" + rid)[0], 202)
        # The right PIN signs for the portal's origin and challenge.
        status, _, r = self.window("POST", "/api/v1/consent/" + rid, {"pin": "123456"})
        self.assertEqual((status, r), (200, {"done": True}))
        status, _, token = self.call("GET", "/api/v1/login/" + rid)
        self.assertEqual(status, 200, token)
        path = os.path.join(self.dir, "token.json")
        with open(path, "w") as f:
            json.dump(token, f)
        out = run_tool(os.path.join(os.path.dirname(harness.AGENT), "ukey-verify"), "--token", path, "--challenge",
                       CHALLENGE, "--origin", PORTAL, "--ca-file", os.path.join(self.dir, "ca.pem"))
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        # Answered once: the id is spent, for the portal and for the window.
        self.assertEqual(self.call("GET", "/api/v1/login/" + rid)[2]["error"]["code"], "CONSENT_NOT_FOUND")
        self.assertEqual(self.window("POST", "/api/v1/consent/" + rid, {"pin": "123456"})[2]["error"]["code"],
                         "CONSENT_NOT_FOUND")
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)  # the right PIN reset the counter

    def test_no_pin_without_a_pin_pad(self):
        # The window sends an empty PIN when the reader has a pad; vpcd has
        # none, so the request is refused and stays pending, no try spent.
        rid = self.pending()
        status, _, info = self.window("GET", "/api/v1/consent/" + rid)
        self.assertIs(info["pin"]["pin_pad"], False)
        for body in ({"pin": ""}, {}):
            status, _, r = self.window("POST", "/api/v1/consent/" + rid, body)
            self.assertEqual((status, r["error"]["code"]), (400, "PIN_REQUIRED"), body)
        self.assertEqual(self.call("GET", "/api/v1/login/" + rid)[2]["state"], "pending")
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)
        self.assertEqual(self.window("POST", "/api/v1/consent/" + rid, {"pin": "123456"})[0], 200)

    def test_bound_to_the_origin_and_replays_fail(self):
        rid = self.pending()
        # Another allowed site cannot collect it.
        self.assertEqual(self.call("GET", "/api/v1/login/" + rid, origin=LEGACY)[2]["error"]["code"], "CONSENT_NOT_FOUND")
        self.assertEqual(self.call("GET", "/api/v1/login/" + rid, origin=None)[2]["error"]["code"], "CONSENT_NOT_FOUND")
        # Guessing ids gets nowhere.
        self.assertEqual(self.call("GET", "/api/v1/login/" + "0" * 64)[2]["error"]["code"], "CONSENT_NOT_FOUND")
        self.assertEqual(self.window("GET", "/api/v1/consent/" + "0" * 64)[2]["error"]["code"], "CONSENT_NOT_FOUND")
        # Two submits at once are not two signatures: the second finds it spent.
        self.assertEqual(self.window("POST", "/api/v1/consent/" + rid, {"pin": "123456"})[0], 200)
        self.assertEqual(self.window("POST", "/api/v1/consent/" + rid, {"pin": "123456"})[0], 404)

    def test_the_window_routes_are_the_agents_own(self):
        rid = self.pending()
        for method, path, body in (("GET", "/api/v1/consent/" + rid, None),
                                   ("POST", "/api/v1/consent/" + rid, {"pin": "123456"}),
                                   ("POST", "/api/v1/consent/%s/cancel" % rid, {})):
            # An allowed portal, a cross-site request without Origin, and a preflight: all refused, no CORS.
            status, hdrs, r = self.call(method, path, body, origin=PORTAL)
            self.assertEqual((status, r["error"]["code"]), (403, "ORIGIN_NOT_ALLOWED"), path)
            self.assertIsNone(hdrs.get("Access-Control-Allow-Origin"))
            self.assertEqual(self.call(method, path, body, origin=None, site="cross-site")[0], 403)
            status, hdrs, _ = self.call("OPTIONS", path, origin=PORTAL)
            self.assertEqual(status, 403)
            self.assertIsNone(hdrs.get("Access-Control-Allow-Origin"))
        self.assertEqual(self.call("GET", "/api/v1/login/" + rid)[0], 202)  # still pending: nothing was signed
        # The page itself: never framed.
        status, hdrs, _ = self.agent.request("GET", "/consent.html")
        self.assertEqual(status, 200)
        self.assertIn("frame-ancestors 'none'", hdrs["Content-Security-Policy"])
        self.assertEqual(hdrs["X-Frame-Options"], "DENY")

    def test_cancel_and_timeout(self):
        rid = self.pending()
        self.assertEqual(self.window("POST", "/api/v1/consent/%s/cancel" % rid, {})[2], {"cancelled": True})
        self.assertEqual(self.window("POST", "/api/v1/consent/" + rid, {"pin": "123456"})[2]["error"]["code"],
                         "USER_CANCELLED")
        status, _, r = self.call("GET", "/api/v1/login/" + rid)
        self.assertEqual((status, r["error"]["code"]), (409, "USER_CANCELLED"))
        # An agent whose requests live 1 s.
        with harness.Agent(config={"allow_origins": [PORTAL], "limits": {"consent_timeout_s": 1}}) as brief:
            status, _, r = self.call("POST", "/api/v1/login", {"challenge": CHALLENGE, "consent": True},
                                     agent=brief)
            self.assertEqual((status, r["expires_in"]), (202, 1), r)
            time.sleep(1.5)
            own = "https://127.0.0.1:%d" % brief.port
            status, _, info = self.call("GET", "/api/v1/consent/" + r["request"], origin=None, site="same-origin",
                                        agent=brief)
            self.assertEqual(info["error"]["code"], "CONSENT_TIMEOUT")
            status, _, late = self.call("POST", "/api/v1/consent/" + r["request"], {"pin": "123456"}, origin=own,
                                        site="same-origin", agent=brief)
            self.assertEqual(late["error"]["code"], "CONSENT_TIMEOUT")
            status, _, late = self.call("GET", "/api/v1/login/" + r["request"], agent=brief)
            self.assertEqual((status, late["error"]["code"]), (408, "CONSENT_TIMEOUT"))
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)

    def test_the_page_withdraws_its_request(self):
        """DELETE /api/v1/login/{id} (the SDK, when the same page asks again):
        the window hears CONSENT_REPLACED and signs nothing; no other origin
        can withdraw it; an ended request is dropped with its answer."""
        rid = self.pending()
        # Only the origin that asked; a preflight names DELETE for it.
        status, hdrs, _ = self.call("OPTIONS", "/api/v1/login/" + rid)
        self.assertEqual(status, 204)
        self.assertIn("DELETE", hdrs["Access-Control-Allow-Methods"])
        for origin in (LEGACY, None):
            status, _, r = self.call("DELETE", "/api/v1/login/" + rid, {}, origin=origin)
            self.assertEqual(r["error"]["code"], "CONSENT_NOT_FOUND", origin)
        self.assertEqual(self.call("DELETE", "/api/v1/sign/" + rid, {})[2]["error"]["code"], "CONSENT_NOT_FOUND")
        # A state-changing request carries JSON (invariant 4).
        self.assertEqual(self.call("DELETE", "/api/v1/login/" + rid)[0], 415)
        self.assertEqual(self.call("GET", "/api/v1/login/" + rid)[0], 202)
        self.assertEqual(self.call("DELETE", "/api/v1/login/" + rid, {})[:3:2], (200, {"withdrawn": True}))
        # The window: replaced, before any card work.
        status, _, r = self.window("POST", "/api/v1/consent/" + rid, {"pin": "123456"})
        self.assertEqual((status, r["error"]["code"]), (409, "CONSENT_REPLACED"))
        self.assertEqual(self.window("GET", "/api/v1/consent/" + rid)[2]["error"]["code"], "CONSENT_REPLACED")
        self.assertEqual(self.call("DELETE", "/api/v1/login/" + rid, {})[0], 200)  # ended: dropped
        self.assertEqual(self.call("GET", "/api/v1/login/" + rid)[2]["error"]["code"], "CONSENT_NOT_FOUND")
        self.assertEqual(self.call("DELETE", "/api/v1/login/" + rid, {})[2]["error"]["code"], "CONSENT_NOT_FOUND")
        # Signed but not yet collected: the token is dropped unread.
        rid = self.pending()
        self.assertEqual(self.window("POST", "/api/v1/consent/" + rid, {"pin": "123456"})[0], 200)
        self.assertEqual(self.call("DELETE", "/api/v1/login/" + rid, {})[0], 200)
        self.assertEqual(self.call("GET", "/api/v1/login/" + rid)[2]["error"]["code"], "CONSENT_NOT_FOUND")
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)

    def test_pin_entry_policy(self):
        # A consent site may not send PINs from its page, to any PIN endpoint.
        status, _, r = self.call("POST", "/api/v1/login", {"challenge": CHALLENGE, "pin": "123456"})
        self.assertEqual((status, r["error"]["code"]), (403, "PIN_ENTRY_IN_AGENT_WINDOW"))
        tid = json.loads(self.agent.request("GET", "/api/v1/tokens")[2])["tokens"][0]["id"]
        for op, body in (("verify", {"pin": "123456"}), ("change", {"old_pin": "123456", "new_pin": "654321"}),
                         ("unblock", {"puk": "12345678", "new_pin": "654321"})):
            status, _, r = self.call("POST", "/api/v1/tokens/%s/pin/%s" % (tid, op), body)
            self.assertEqual(r["error"]["code"], "PIN_ENTRY_IN_AGENT_WINDOW", op)
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)
        # Status tells each site which flow to use.
        self.assertEqual(self.call("GET", "/api/v1/status")[2]["pin_entry"], "consent")
        self.assertEqual(self.call("GET", "/api/v1/status", origin=LEGACY)[2]["pin_entry"], "page")
        # The allow-list itself only to the agent's own page (and local programs).
        self.assertNotIn("allow_origins", self.call("GET", "/api/v1/status")[2])
        self.assertEqual(self.call("GET", "/api/v1/status", origin=None)[2]["allow_origins"],
                         [{"origin": PORTAL, "pin_entry": "consent"}, {"origin": LEGACY, "pin_entry": "page"}])
        # A "page" site keeps today's flow; the agent's own pages and local programs too.
        self.assertEqual(self.call("POST", "/api/v1/login", {"challenge": CHALLENGE, "pin": "123456"},
                                   origin=LEGACY)[0], 200)
        self.assertEqual(self.call("POST", "/api/v1/login", {"challenge": CHALLENGE, "pin": "123456"},
                                   origin=self.self_origin)[0], 200)
        self.assertEqual(self.call("POST", "/api/v1/tokens/%s/pin/verify" % tid, {"pin": "123456"}, origin=None)[0],
                         200)
        # Consent requests never carry a PIN, and need a real challenge and an origin.
        self.assertEqual(self.call("POST", "/api/v1/login", {"challenge": CHALLENGE, "consent": True,
                                                             "pin": "123456"})[0], 400)
        self.assertEqual(self.call("POST", "/api/v1/login", {"challenge": "c2hvcnQ=", "consent": True})[2]["error"]["code"],
                         "CHALLENGE_INVALID")
        self.assertEqual(self.call("POST", "/api/v1/login", {"challenge": CHALLENGE, "consent": True},
                                   origin=None)[2]["error"]["code"], "ORIGIN_REQUIRED")

    def test_several_tabs_do_not_mix(self):
        c1, c2 = CHALLENGE, base64.b64encode(os.urandom(32)).decode()
        first, second = self.pending(challenge=c1), self.pending(origin=LEGACY, challenge=c2)
        self.assertEqual(self.window("GET", "/api/v1/consent/" + first)[2]["origin"], PORTAL)
        self.assertEqual(self.window("GET", "/api/v1/consent/" + second)[2]["origin"], LEGACY)
        self.assertEqual(self.window("POST", "/api/v1/consent/" + second, {"pin": "123456"})[0], 200)
        self.assertEqual(self.call("GET", "/api/v1/login/" + first)[0], 202)          # still waiting
        status, _, token = self.call("GET", "/api/v1/login/" + second, origin=LEGACY)
        self.assertEqual(status, 200)
        path = os.path.join(self.dir, "token2.json")
        with open(path, "w") as f:
            json.dump(token, f)
        out = run_tool(os.path.join(os.path.dirname(harness.AGENT), "ukey-verify"), "--token", path, "--challenge",
                       c2, "--origin", LEGACY, "--ca-file", os.path.join(self.dir, "ca.pem"), check=False)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.window("POST", "/api/v1/consent/%s/cancel" % first, {})
        self.call("GET", "/api/v1/login/" + first)

    def test_per_origin_quota(self):
        """Redteam-2 2.18 (W3): one origin cannot take every pending slot.
        Each origin holds at most limits.consents_per_origin (2) live
        requests; its next one replaces its oldest (CONSENT_REPLACED), ended
        requests hold no live slot, and the 16 live slots of all origins
        together answer AGENT_BUSY only when 8 origins fill them."""
        site = "https://%s.sites.example"
        with harness.Agent(config={"allow_origins": ["https://*.sites.example"]}) as shared:
            def create(origin, challenge=CHALLENGE):
                return self.call("POST", "/api/v1/login", {"challenge": challenge, "consent": True}, origin=origin,
                                 agent=shared)

            def poll(origin, rid):
                status, _, r = self.call("GET", "/api/v1/login/" + rid, origin=origin, agent=shared)
                return status, r.get("state") or r["error"]["code"]

            def window(method, path, body=None):
                own = "https://127.0.0.1:%d" % shared.port
                return self.call(method, path, body, origin=own if method == "POST" else None, site="same-origin",
                                 agent=shared)

            spam = site % "spam"
            ids = []
            for _ in range(17):
                status, _, r = create(spam)
                self.assertEqual(status, 202, r)  # a user who clicks twice is never refused
                ids.append(r["request"])
            # Another site gets its login at once.
            status, _, victim = create(site % "victim")
            self.assertEqual(status, 202, victim)
            # The spammer's newest two wait; the two before them say they were replaced (once);
            # older ones are forgotten (at most 2 ended requests kept per origin).
            self.assertEqual([poll(spam, rid) for rid in ids[-2:]], [(202, "pending")] * 2)
            self.assertEqual(window("GET", "/api/v1/consent/" + ids[-3])[2]["error"]["code"], "CONSENT_REPLACED")
            self.assertEqual(window("POST", "/api/v1/consent/" + ids[-3], {"pin": "123456"})[2]["error"]["code"],
                             "CONSENT_REPLACED")
            self.assertEqual([poll(spam, rid) for rid in ids[-4:-2]], [(409, "CONSENT_REPLACED")] * 2)
            self.assertEqual([poll(spam, rid) for rid in ids[-4:-2]], [(404, "CONSENT_NOT_FOUND")] * 2)
            self.assertEqual({poll(spam, rid) for rid in ids[:-4]}, {(404, "CONSENT_NOT_FOUND")})
            # All origins together: 16 live requests (spam 2, victim 1, then 6 sites x 2 and victim's second).
            for n in range(6):
                for _ in range(2):
                    self.assertEqual(create(site % ("s%d" % n))[0], 202)
            status, _, second = create(site % "victim")
            self.assertEqual(status, 202, second)
            status, _, r = create(site % "late")
            self.assertEqual((status, r["error"]["code"]), (503, "AGENT_BUSY"))
            # A cancelled request frees its live slot at once, while it waits for its poller...
            self.assertEqual(window("POST", "/api/v1/consent/%s/cancel" % victim["request"], {})[0], 200)
            status, _, late = create(site % "late")
            self.assertEqual(status, 202, late)
            # ...which reads it once, and then it is gone.
            self.assertEqual(poll(site % "victim", victim["request"]), (409, "USER_CANCELLED"))
            self.assertEqual(poll(site % "victim", victim["request"]), (404, "CONSENT_NOT_FOUND"))
            self.assertEqual(poll(site % "late", late["request"]), (202, "pending"))

    def test_card_work_per_origin(self):
        """One site cannot queue the card for every other (issue 17): at
        most 8 of its card requests run at once, the next hears
        ORIGIN_BUSY; another origin's card request is not refused for it."""
        self.card.remove()
        self.faults = ("slow=300",)  # every APDU takes 0.3 s: a login holds the card for seconds
        self.card = self.insert()
        results = []

        def login(origin):
            status, _, r = self.call("POST", "/api/v1/login", {"challenge": CHALLENGE, "pin": "123456"}, origin=origin)
            results.append((origin, "OK" if status == 200 else r["error"]["code"]))

        threads = [threading.Thread(target=login, args=(LEGACY,)) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        codes = [code for _, code in results]
        self.assertEqual(len(codes), 12)
        self.assertIn("ORIGIN_BUSY", codes, codes)
        self.assertLessEqual(set(codes), {"OK", "TOKEN_BUSY", "ORIGIN_BUSY"}, codes)
        self.assertLessEqual(codes.count("OK") + codes.count("TOKEN_BUSY"), 8, codes)
        # The agent's own page, at the same time as a full queue of that site, is not the site's quota.
        threads = [threading.Thread(target=login, args=(LEGACY,)) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        login(self.self_origin)
        for t in threads:
            t.join(60)
        own = [code for origin, code in results if origin == self.self_origin]
        self.assertEqual(len(own), 1)
        self.assertIn(own[0], {"OK", "TOKEN_BUSY"})
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)

    def test_one_challenge_rule(self):
        """Redteam-2 4.5, 4.7 (W11): the consent path takes every challenge
        the page path takes (up to 1024 characters) and both refuse line
        breaks, spaces and other characters outside Base64."""
        longest = base64.b64encode(os.urandom(768)).decode()
        self.assertEqual(len(longest), 1024)
        for challenge in (base64.b64encode(os.urandom(525)).decode(), longest):  # 700 and 1024 characters
            rid = self.pending(challenge=challenge)
            self.assertEqual(self.window("POST", "/api/v1/consent/" + rid, {"pin": "123456"})[0], 200)
            status, _, token = self.call("GET", "/api/v1/login/" + rid)
            self.assertEqual(status, 200, token)
            path = os.path.join(self.dir, "long.json")
            with open(path, "w") as f:
                json.dump(token, f)
            out = run_tool(os.path.join(os.path.dirname(harness.AGENT), "ukey-verify"), "--token", path,
                           "--challenge", challenge, "--origin", PORTAL, "--ca-file",
                           os.path.join(self.dir, "ca.pem"), check=False)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        too_long = base64.b64encode(os.urandom(771)).decode()
        for bad in (too_long, CHALLENGE[:20] + "\n" + CHALLENGE[20:], CHALLENGE[:20] + "\r\n" + CHALLENGE[20:],
                    CHALLENGE + "\n", CHALLENGE + " ", "\t" + CHALLENGE, CHALLENGE[:20] + "\x0b" + CHALLENGE[20:]):
            status, _, r = self.call("POST", "/api/v1/login", {"challenge": bad, "consent": True})
            self.assertEqual((status, r["error"]["code"]), (400, "CHALLENGE_INVALID"), repr(bad))


class ConsentPacing(ConsentBase):
    """Finding 4 (W4): a PIN typed in the window meets the pause after a wrong
    one like any other, and the wrong answer says when the next may come."""
    pin_retry_delay_ms = 500

    def test_wrong_pins_in_the_window_are_paced(self):
        rid = self.pending()
        status, _, r = self.window("POST", "/api/v1/consent/" + rid, {"pin": "000000"})
        self.assertEqual((status, r["error"]["code"], r["error"]["retries_left"]), (403, "PIN_INCORRECT", 2))
        self.assertTrue(0 < r["error"]["retry_after_ms"] <= 500, r)
        status, hdrs, r = self.window("POST", "/api/v1/consent/" + rid, {"pin": "123456"})
        self.assertEqual((status, r["error"]["code"], hdrs["Retry-After"]), (429, "PIN_TOO_SOON", "1"), r)
        # The window shows the pause; the login stays pending, no try spent.
        status, _, info = self.window("GET", "/api/v1/consent/" + rid)
        self.assertGreater(info["pin"]["retry_after_ms"], 0)
        self.assertEqual(self.call("GET", "/api/v1/login/" + rid)[0], 202)
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 2)
        time.sleep(r["error"]["retry_after_ms"] / 1000 + 0.05)
        status, _, r = self.window("POST", "/api/v1/consent/" + rid, {"pin": "123456"})
        self.assertEqual((status, r), (200, {"done": True}))
        self.assertEqual(self.call("GET", "/api/v1/login/" + rid)[0], 200)


if __name__ == "__main__":
    harness.main()
