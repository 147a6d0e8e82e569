"""The agent under valgrind memcheck through a full session (issue 8):
status, tokens, a PIN verify, a wrong PIN, a login from a "page" site, a
login through the consent window, diagnostics, events, then SIGTERM. Any
invalid read or write, use of uninitialised memory, or definite leak makes
valgrind exit with 99, which the harness reports. Release build only (the
sanitizer build cannot run under valgrind)."""
import base64
import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402

PAGE = "https://page.gov.example"
PORTAL = "https://portal.gov.example"
JSON = {"Content-Type": "application/json"}


class Valgrind(unittest.TestCase):
    def test_full_session_is_clean(self):
        pcscd = pcsc.Pcscd().start()
        d = tempfile.mkdtemp(prefix="ukey-valgrind-")
        try:
            pki = pcsc.make_pki(d)
            state = os.path.join(d, "card.json")
            pcsc.write_card_state(state, pki)
            card = pcsc.VirtualCard(pcscd, state).insert()
            agent = harness.Agent(
                config={"allow_origins": [{"origin": PAGE, "pin_entry": "page"}, PORTAL]},
                wrapper=["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                         "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                         "--track-origins=yes", "--child-silent-after-fork=yes"],
                stop_timeout=120)  # valgrind's leak check at exit, on a busy machine
            agent.start(timeout=120)
            try:
                self.session(agent, pki["9a"][0])
            finally:
                card.remove()
                agent.cleanup()   # fails on valgrind's exit code 99, with its report
        finally:
            pcscd.cleanup()
            shutil.rmtree(d, ignore_errors=True)

    def session(self, agent, certificate):
        def call(method, path, body=None, origin=None, site=None):
            headers = dict(JSON) if body is not None else {}
            if origin:
                headers["Origin"] = origin
            if site:
                headers["Sec-Fetch-Site"] = site
            status, _, raw = agent.request(method, path, headers, None if body is None else json.dumps(body),
                                           timeout=120)
            return status, json.loads(raw) if raw else None

        challenge = base64.b64encode(os.urandom(32)).decode()
        self.assertEqual(call("GET", "/api/v1/status")[0], 200)
        status, tokens = call("GET", "/api/v1/tokens")
        self.assertEqual(status, 200)
        tid = tokens["tokens"][0]["id"]
        self.assertEqual(call("POST", "/api/v1/tokens/%s/pin/verify" % tid, {"pin": "123456"})[0], 200)
        self.assertEqual(call("POST", "/api/v1/tokens/%s/pin/verify" % tid, {"pin": "000000"})[0], 403)
        self.assertEqual(call("POST", "/api/v1/login", {"challenge": challenge, "pin": "123456"}, origin=PAGE)[0], 200)
        status, pending = call("POST", "/api/v1/login", {"challenge": challenge, "consent": True}, origin=PORTAL)
        self.assertEqual(status, 202)
        rid = pending["request"]
        self_origin = "https://127.0.0.1:%d" % agent.port
        self.assertEqual(call("GET", "/api/v1/consent/" + rid, site="same-origin")[0], 200)
        self.assertEqual(call("POST", "/api/v1/consent/" + rid, {"pin": "123456"}, origin=self_origin)[0], 200)
        self.assertEqual(call("GET", "/api/v1/login/" + rid, origin=PORTAL)[0], 200)
        self.assertEqual(call("GET", "/api/v1/diagnostics?lang=en")[0], 200)
        self.assertEqual(call("POST", "/api/v1/certificates/check", {"certificate": certificate})[0], 200)
        self.assertEqual(call("GET", "/api/v1/nothing")[0], 404)


if __name__ == "__main__":
    harness.main()
