"""Tokens through the real pcscd and the virtual PIV card: listing, PIN
rules, the verified state, parallel requests, removal, pcscd restarts and
faulty cards (issue 3; security.md CARD-01..06)."""
import concurrent.futures
import contextlib
import http.client
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
from agent import run_tool  # noqa: E402

TOKEN = "piv-00112233445566778899aabbccddeeff"
JSON = {"Content-Type": "application/json"}


def verify_apdus(lines):
    """VERIFY commands that carried a PIN (lc > 0) in a card log."""
    return [l for l in lines if re.match(r"APDU [0-9A-Fa-f]{2} 20 00 80 lc=[1-9]", l)]


def unblock_apdus(lines):
    """RESET RETRY COUNTER commands (the PUK and a new PIN) in a card log."""
    return [l for l in lines if re.match(r"APDU [0-9A-Fa-f]{2} 2C 00 80", l)]


class CardTest(pcsc.CardCase):
    token_id = TOKEN

    def write_state(self, path):
        pcsc.write_card_state(path, self.pki)


class Tokens(CardTest):
    def test_list_tokens_and_certificates(self):
        body = self.tokens()
        self.assertTrue(body["pcsc"]["available"])
        present = [r for r in body["readers"] if r["state"] == "present"]
        self.assertEqual(len(present), 1)
        self.assertEqual(present[0]["token"], TOKEN)
        [tok] = body["tokens"]
        self.assertEqual((tok["id"], tok["type"]), (TOKEN, "PIV"))
        self.assertEqual(tok["pin"]["retries_left"], 3)
        self.assertFalse(tok["pin"]["blocked"])
        certs = {c["id"]: c for c in tok["certificates"]}
        self.assertEqual(set(certs), {"9a", "9c"})
        self.assertEqual(certs["9a"]["subject_cn"], "张三")
        self.assertIn("O=测试单位", certs["9a"]["subject"])
        # The subject's attributes one by one, and the extensions under China's arc (1.2.156).
        self.assertEqual(certs["9a"]["subject_fields"], [{"key": "CN", "oid": "2.5.4.3", "value": "张三"},
                                                         {"key": "O", "oid": "2.5.4.10", "value": "测试单位"},
                                                         {"key": "C", "oid": "2.5.4.6", "value": "CN"}])
        self.assertEqual(certs["9a"]["cn_extensions"], [])
        self.assertEqual(certs["9c"]["cn_extensions"], [{"oid": "1.2.156.112570.148", "value": pcsc.TEST_ID_NUMBER}])
        self.assertEqual((certs["9a"]["key_type"], certs["9a"]["key_size"]), ("EC", 256))
        self.assertEqual((certs["9c"]["key_type"], certs["9c"]["key_size"]), ("RSA", 2048))
        self.assertEqual(certs["9a"]["ext_key_usage"], ["clientAuth"])
        self.assertTrue(certs["9a"]["authentication"])
        self.assertIn("CN=ukey test CA", certs["9a"]["issuer"])
        # The certificate served is the one on the card, byte for byte.
        pem_body = "".join(self.pki["9a"][0].strip().splitlines()[1:-1])
        self.assertEqual(certs["9a"]["der"], pem_body)
        status, _, st = self.agent.get_json("/api/v1/status")
        self.assertEqual((st["readers"], st["cards"]), (2, 1))

    def test_cli_tokens(self):
        out = run_tool(harness.AGENT, "tokens", "--json").stdout
        self.assertEqual(json.loads(out)["tokens"][0]["id"], TOKEN)
        text = run_tool(harness.AGENT, "tokens").stdout
        self.assertIn(TOKEN, text)
        self.assertIn("PIN 3 tries left, PUK 3 tries left", text)

    def test_second_listing_is_cached(self):
        self.tokens()
        before = len(self.card.apdu_log())
        self.tokens()
        self.assertLessEqual(len(self.card.apdu_log()) - before, 3, self.card.apdu_log()[before:])

    def test_wrong_pin_right_pin_and_the_reset(self):
        status, body = self.pin("verify", {"pin": "000000"})
        self.assertEqual((status, body["error"]["code"]), (403, "PIN_INCORRECT"))
        self.assertEqual(body["error"]["retries_left"], 2)
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 2)
        self.assertEqual(self.tokens()["tokens"][0]["pin"]["retries_left"], 2)
        status, body = self.pin("verify", {"pin": "123456"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body, {"verified": True, "pin": {"retries_left": 3, "blocked": False},
                                "puk": {"retries_left": 3, "blocked": False}})
        log = self.card.apdu_log()
        self.assertTrue(any(re.match(r"APDU 00 20 FF 80", l) for l in log), log)
        # Another PC/SC client finds the card not verified (no PIN riding, CARD-01).
        out = run_tool("opensc-tool", "-r", pcsc.READER, "-s", "00A4040009A00000030800001000",
                       "-s", "00200080").stdout
        self.assertIn("SW1=0x63, SW2=0xC3", out)

    def test_last_attempt_guard_block_and_unblock(self):
        for left in (2, 1):
            status, body = self.pin("verify", {"pin": "000000"})
            self.assertEqual(body["error"]["retries_left"], left)
        sent = len(verify_apdus(self.card.apdu_log()))
        status, body = self.pin("verify", {"pin": "000000"})
        self.assertEqual((status, body["error"]["code"]), (409, "PIN_LAST_ATTEMPT"))
        self.assertEqual(len(verify_apdus(self.card.apdu_log())), sent, "no VERIFY may reach the card")
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 1)
        status, body = self.pin("verify", {"pin": "000000", "confirm_last_attempt": True})
        self.assertEqual((status, body["error"]["code"]), (423, "PIN_BLOCKED"))
        status, body = self.pin("verify", {"pin": "123456", "confirm_last_attempt": True})
        self.assertEqual((status, body["error"]["code"]), (423, "PIN_BLOCKED"))
        self.assertTrue(self.tokens()["tokens"][0]["pin"]["blocked"])
        status, body = self.pin("unblock", {"puk": "87654321", "new_pin": "112233"})
        self.assertEqual((status, body["error"]["code"]), (403, "PUK_INCORRECT"))
        status, body = self.pin("unblock", {"puk": "12345678", "new_pin": "112233"})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.pin("verify", {"pin": "112233"})[0], 200)
        self.assertEqual(self.tokens()["tokens"][0]["pin"], {"retries_left": 3, "retries_low": False, "blocked": False, "pin_pad": False,
                                                            "digits_only": True, "min_length": 6, "max_length": 8,
                                                            "retry_after_ms": 0})

    def test_puk_last_attempt_guard(self):
        """Finding 1 (W1): the PUK's counter is listed (GET METADATA) and its
        last try is spent only with confirm_last_attempt, also while the PIN
        is fine."""
        self.assertEqual(self.tokens()["tokens"][0]["puk"], {"retries_left": 3, "retries_low": False, "blocked": False})
        for left in (2, 1):
            status, body = self.pin("unblock", {"puk": "00000000", "new_pin": "123456"})
            self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]),
                             (403, "PUK_INCORRECT", left))
        self.assertEqual(self.tokens()["tokens"][0]["puk"]["retries_left"], 1)
        sent = len(unblock_apdus(self.card.apdu_log()))
        for confirm in ({}, {"confirm_last_attempt": False}):
            status, body = self.pin("unblock", dict({"puk": "00000002", "new_pin": "123456"}, **confirm))
            self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]),
                             (409, "PUK_LAST_ATTEMPT", 1))
        self.assertEqual(len(unblock_apdus(self.card.apdu_log())), sent, "no RESET RETRY COUNTER may reach the card")
        self.assertEqual(pcsc.read_card_state(self.state)["puk_tries"], 1)
        status, body = self.pin("unblock", {"puk": "00000002", "new_pin": "123456", "confirm_last_attempt": "yes"})
        self.assertEqual((status, body["error"]["code"]), (400, "INVALID_REQUEST"))
        status, body = self.pin("unblock", {"puk": "00000002", "new_pin": "123456", "confirm_last_attempt": True})
        self.assertEqual((status, body["error"]["code"], body["error"]["blocked"]), (423, "PUK_BLOCKED", True))
        tok = self.tokens()["tokens"][0]
        self.assertEqual((tok["puk"]["retries_left"], tok["puk"]["blocked"], tok["pin"]["retries_left"]), (0, True, 3))
        # A blocked PUK is refused before the card, even the right one.
        sent = len(unblock_apdus(self.card.apdu_log()))
        status, body = self.pin("unblock", {"puk": "12345678", "new_pin": "123456", "confirm_last_attempt": True})
        self.assertEqual((status, body["error"]["code"]), (423, "PUK_BLOCKED"))
        self.assertEqual(len(unblock_apdus(self.card.apdu_log())), sent)
        self.assertEqual(self.pin("verify", {"pin": "123456"})[0], 200)

    def test_right_puk_restores_its_counter(self):
        status, body = self.pin("unblock", {"puk": "00000000", "new_pin": "123456"})
        self.assertEqual(body["error"]["retries_left"], 2)
        status, body = self.pin("unblock", {"puk": "12345678", "new_pin": "654321"})
        self.assertEqual((status, body["puk"]), (200, {"retries_left": 3, "blocked": False}), body)
        self.assertEqual(self.pin("verify", {"pin": "654321"})[0], 200)

    def test_malformed_pin_costs_no_try(self):
        for bad in ("12ab56", "123", "123456789", "", "１２３４５６"):
            status, body = self.pin("verify", {"pin": bad})
            self.assertEqual((status, body["error"]["code"]), (400, "PIN_FORMAT"), bad)
        self.assertEqual(verify_apdus(self.card.apdu_log()), [])
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)

    def test_change_pin(self):
        self.assertEqual(self.pin("change", {"old_pin": "123456", "new_pin": "654321"})[0], 200)
        self.assertEqual(self.pin("verify", {"pin": "654321"})[0], 200)
        status, body = self.pin("change", {"old_pin": "123456", "new_pin": "111111"})
        self.assertEqual(body["error"]["code"], "PIN_INCORRECT")

    def test_bad_bodies(self):
        for body in ({"pin": 123456}, {"pin": "123456", "extra": 1}, {}, {"pin": "123456", "confirm_last_attempt": "yes"},
                     {"puk": "12345678"}):
            status, out = self.pin("verify", body)
            self.assertEqual((status, out["error"]["code"]), (400, "INVALID_REQUEST"), body)
        status, _, raw = self.agent.request("POST", "/api/v1/tokens/%s/pin/verify" % TOKEN, JSON, body="[1]")
        self.assertEqual(json.loads(raw)["error"]["code"], "INVALID_JSON")
        status, _, raw = self.agent.request("POST", "/api/v1/tokens/piv-nope/pin/verify", JSON,
                                            body='{"pin": "123456"}')
        self.assertEqual((status, json.loads(raw)["error"]["code"]), (404, "TOKEN_NOT_FOUND"))
        self.assertEqual(verify_apdus(self.card.apdu_log()), [])

    def test_parallel_requests_are_serialised(self):
        self.tokens()
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda _: self.pin("verify", {"pin": "123456"})[0], range(6)))
            listings = list(pool.map(lambda _: self.agent.get_json("/api/v1/tokens")[0], range(6)))
        self.assertEqual(results, [200] * 6)
        self.assertEqual(listings, [200] * 6)

    def test_pin_never_logged(self):
        self.pin("verify", {"pin": "918273"})
        self.pin("verify", {"pin": "123456"})
        self.assertNotIn("918273", self.agent.log_text())
        self.assertNotIn("123456", self.agent.log_text())


HOLD_EXCLUSIVE = r"""
import ctypes, sys
lib = ctypes.CDLL("libpcsclite.so.1")
ctx, card, proto = ctypes.c_long(), ctypes.c_long(), ctypes.c_ulong()
assert lib.SCardEstablishContext(2, None, None, ctypes.byref(ctx)) == 0
rv = lib.SCardConnect(ctx, sys.argv[1].encode(), 1, 3, ctypes.byref(card), ctypes.byref(proto))
print("held" if rv == 0 else "failed %x" % (rv & 0xffffffff), flush=True)
sys.stdin.read()
"""


class Exclusive(CardTest):
    def test_another_program_holding_the_card_is_named(self):
        """The old "two helper programs conflict" problem: TOKEN_BUSY, not a hang."""
        self.tokens()
        holder = subprocess.Popen([sys.executable, "-c", HOLD_EXCLUSIVE, pcsc.READER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, preexec_fn=harness._die_with_parent)
        try:
            self.assertEqual(holder.stdout.readline().strip(), "held")
            body = self.tokens()
            [reader] = [r for r in body["readers"] if r["name"] == pcsc.READER]
            self.assertEqual((reader["state"], reader["error"]["code"]), ("in_use", "TOKEN_BUSY"))
            self.assertIn("Another program holds the token exclusively", reader["error"]["en"])
            status, out = self.pin("verify", {"pin": "123456"})
            self.assertEqual((status, out["error"]["code"]), (409, "TOKEN_BUSY"))
        finally:
            holder.stdin.close()
            holder.wait(10)
            holder.stdout.close()
        self.assertEqual(self.pin("verify", {"pin": "123456"})[0], 200)

    def test_a_moment_of_exclusive_hold_is_waited_out(self):
        """Middleware that takes the card exclusively for a moment: the
        request asks again and gets the card, not TOKEN_BUSY."""
        self.tokens()
        retry_log = r"another program holds the card exclusively: asking again for a moment$"
        retried = self.agent.log_count(retry_log)
        holder = subprocess.Popen([sys.executable, "-c", HOLD_EXCLUSIVE, pcsc.READER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, preexec_fn=harness._die_with_parent)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            try:
                self.assertEqual(holder.stdout.readline().strip(), "held")
                pending = pool.submit(self.pin, "verify", {"pin": "123456"})
                self.assertTrue(self.agent.wait_log(retry_log, retried + 1, timeout=10))
            finally:
                holder.stdin.close()
                holder.wait(10)
                holder.stdout.close()
            status, body = pending.result(30)
        self.assertEqual(status, 200, body)


class EventStream:
    """Reads /api/v1/events in a thread and collects (event, data) pairs."""

    def __init__(self, agent, origin=None):
        import threading
        self.events = []
        self.conn = agent.connect(timeout=60)
        headers = {"Host": "127.0.0.1:%d" % agent.port, "Accept": "text/event-stream"}
        if origin:
            headers["Origin"] = origin
        self.conn.request("GET", "/api/v1/events", headers=headers)
        self.resp = self.conn.getresponse()
        self.headers = self.resp.headers
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        buf = ""
        try:
            while True:
                chunk = self.resp.read1(4096)
                if not chunk:
                    return
                buf += chunk.decode()
                while "\n\n" in buf:
                    block, buf = buf.split("\n\n", 1)
                    fields = dict(l.split(": ", 1) for l in block.split("\n") if ": " in l and not l.startswith(":"))
                    if "event" in fields:
                        self.events.append((fields["event"], json.loads(fields["data"])))
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            return  # closed by the test or the agent

    def wait_for_event(self, event, timeout=15):
        deadline = time.monotonic() + timeout
        while event not in self.events and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.events)

    def wait_for(self, count, timeout=15):
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.events)

    def close(self):
        self.conn.close()


class Events(CardTest):
    def test_insert_and_remove_each_give_one_event_to_every_listener(self):
        seen = self.agent.log_count(r"debug: event token-removed$")
        self.card.remove()
        self.agent.wait_log(r"debug: event token-removed$", seen + 1)  # before the tabs listen
        tabs = [EventStream(self.agent), EventStream(self.agent, origin="https://127.0.0.1:%d" % self.agent.port)]
        try:
            for tab in tabs:
                self.assertEqual(tab.resp.status, 200)
                self.assertTrue(tab.headers["Content-Type"].startswith("text/event-stream"))
            self.assertEqual(tabs[1].headers["Access-Control-Allow-Origin"], "https://127.0.0.1:%d" % self.agent.port)
            time.sleep(0.5)
            self.card = self.insert()
            for tab in tabs:
                self.assertEqual(tab.wait_for(1), [("token-inserted", {"reader": pcsc.READER, "token": TOKEN})])
            self.card.remove()
            for tab in tabs:
                got = tab.wait_for(2)
                self.assertEqual(got[1:], [("token-removed", {"reader": pcsc.READER, "token": TOKEN})])
            time.sleep(1)
            for tab in tabs:
                self.assertEqual(len(tab.events), 2, tab.events)
        finally:
            for tab in tabs:
                tab.close()
        self.card = self.insert()
        self.assertTrue(self.agent.alive())

    def test_agent_stops_cleanly_with_open_streams(self):
        agent = harness.Agent().start()
        tab = EventStream(agent)
        try:
            time.sleep(0.5)  # the stream is parked in the hub
            self.assertEqual(agent.stop(), 0)
        finally:
            tab.close()
            agent.cleanup()

    def test_foreign_origin_gets_no_stream(self):
        status, headers, body = self.agent.request("GET", "/api/v1/events", {"Origin": "https://attacker.example"})
        self.assertEqual(status, 403)
        self.assertIsNone(headers.get("Access-Control-Allow-Origin"))


class RemovedMidRequest(CardTest):
    faults = ("slow=300",)

    def test_removal_during_a_pin_operation(self):
        self.tokens()
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            sent = len(self.card.apdu_log())
            pending = pool.submit(self.pin, "verify", {"pin": "123456"})
            # The request's first command has reached the card; the next are under way.
            deadline = time.monotonic() + 20
            while len(self.card.apdu_log()) == sent and time.monotonic() < deadline:
                time.sleep(0.05)
            self.card.remove()
            status, body = pending.result(30)
        self.assertEqual((status, body["error"]["code"]), (410, "TOKEN_REMOVED"))
        self.assertTrue(self.agent.alive())
        status, _, raw = self.agent.request("POST", "/api/v1/tokens/%s/pin/verify" % TOKEN, JSON,
                                            body='{"pin": "123456"}')
        self.assertEqual((status, json.loads(raw)["error"]["code"]), (404, "TOKEN_NOT_FOUND"))
        # A card again: the agent goes on.
        self.card = pcsc.VirtualCard(self.pcscd, self.state).insert()
        self.assertEqual(self.tokens()["tokens"][0]["id"], TOKEN)


class BadTlv(CardTest):
    faults = ("bad-tlv",)

    def test_malformed_certificate_object(self):
        body = self.tokens()
        [reader] = [r for r in body["readers"] if r["state"] == "present"]
        self.assertEqual(reader["error"]["code"], "CARD_DATA_INVALID")
        self.assertEqual(body["tokens"], [])
        self.assertTrue(self.agent.alive())


class Truncated(CardTest):
    faults = ("truncate",)

    def test_truncated_certificate_object(self):
        body = self.tokens()
        [reader] = [r for r in body["readers"] if r["state"] == "present"]
        self.assertEqual(reader["error"]["code"], "CARD_DATA_INVALID")
        self.assertTrue(self.agent.alive())


class BadStatusWord(CardTest):
    faults = ("sw=20:6F00",)

    def test_unexpected_status_word(self):
        self.assertEqual(self.tokens()["tokens"][0]["id"], TOKEN)
        status, body = self.pin("verify", {"pin": "123456"})
        self.assertEqual((status, body["error"]["code"]), (502, "CARD_ERROR"))
        self.assertTrue(self.agent.alive())


class PukCounterUntold(CardTest):
    """A PIV card without GET METADATA cannot tell the PUK's counter: every
    unblock needs confirm_last_attempt until a wrong PUK has told it (63Cx),
    and the agent remembers that count."""
    faults = ("sw=f7:6D00",)

    def test_untold_counter_is_treated_as_the_last(self):
        self.assertIsNone(self.tokens()["tokens"][0]["puk"]["retries_left"])
        status, body = self.pin("unblock", {"puk": "00000000", "new_pin": "123456"})
        self.assertEqual((status, body["error"]["code"]), (409, "PUK_LAST_ATTEMPT"))
        self.assertNotIn("retries_left", body["error"])
        self.assertEqual(unblock_apdus(self.card.apdu_log()), [])
        status, body = self.pin("unblock", {"puk": "00000000", "new_pin": "123456", "confirm_last_attempt": True})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]), (403, "PUK_INCORRECT", 2))
        self.assertEqual(self.tokens()["tokens"][0]["puk"]["retries_left"], 2)
        status, body = self.pin("unblock", {"puk": "00000001", "new_pin": "123456"})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]), (403, "PUK_INCORRECT", 1))
        status, body = self.pin("unblock", {"puk": "00000002", "new_pin": "123456"})
        self.assertEqual((status, body["error"]["code"]), (409, "PUK_LAST_ATTEMPT"))
        self.assertEqual(len(unblock_apdus(self.card.apdu_log())), 2)
        self.assertEqual(pcsc.read_card_state(self.state)["puk_tries"], 1)


class Pacing(CardTest):
    """Finding 4 (W4): after a wrong PIN the next PIN operation on the token
    waits, longer after each wrong one, and is refused before the card."""
    pin_retry_delay_ms = 600

    def post_pin(self, body):
        status, headers, raw = self.agent.request("POST", "/api/v1/tokens/%s/pin/verify" % TOKEN, JSON,
                                                  body=json.dumps(body))
        return status, headers, json.loads(raw)

    def test_wrong_pins_are_paced(self):
        status, _, body = self.post_pin({"pin": "000000"})
        self.assertEqual((status, body["error"]["code"]), (403, "PIN_INCORRECT"))
        self.assertTrue(0 < body["error"]["retry_after_ms"] <= 600, body)
        sent = len(verify_apdus(self.card.apdu_log()))
        status, headers, body = self.post_pin({"pin": "000001"})
        self.assertEqual((status, body["error"]["code"]), (429, "PIN_TOO_SOON"))
        self.assertTrue(0 < body["error"]["retry_after_ms"] <= 600, body)
        self.assertEqual(headers["Retry-After"], "1")
        self.assertEqual(len(verify_apdus(self.card.apdu_log())), sent, "no VERIFY may reach the card")
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 2)
        self.assertGreater(self.tokens()["tokens"][0]["pin"]["retry_after_ms"], 0)
        # After the pause the card is asked again; the next pause is longer.
        time.sleep(body["error"]["retry_after_ms"] / 1000 + 0.05)
        status, _, body = self.post_pin({"pin": "000001"})
        self.assertEqual((status, body["error"]["code"], body["error"]["retries_left"]), (403, "PIN_INCORRECT", 1))
        self.assertTrue(600 < body["error"]["retry_after_ms"] <= 1200, body)
        time.sleep(body["error"]["retry_after_ms"] / 1000 + 0.05)
        # A right PIN ends the pacing: the next wrong one waits the base again.
        status, _, body = self.post_pin({"pin": "123456", "confirm_last_attempt": True})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.tokens()["tokens"][0]["pin"]["retry_after_ms"], 0)
        status, _, body = self.post_pin({"pin": "000000"})
        self.assertTrue(0 < body["error"]["retry_after_ms"] <= 600, body)

    def test_parallel_wrong_pins_meet_the_pause(self):
        """Requests queued for the card at once: only the first reaches it."""
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda pin: self.post_pin({"pin": pin, "confirm_last_attempt": True}),
                                    ("000000", "000001", "000002", "000003")))
        codes = sorted(body["error"]["code"] for _, _, body in answers)
        self.assertEqual(codes, ["PIN_INCORRECT"] + ["PIN_TOO_SOON"] * 3, answers)
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 2)

    def test_wrong_puk_is_paced_and_a_malformed_pin_is_not(self):
        status, body = self.pin("unblock", {"puk": "00000000", "new_pin": "123456"})
        self.assertEqual((status, body["error"]["code"]), (403, "PUK_INCORRECT"))
        self.assertGreater(body["error"]["retry_after_ms"], 0)
        status, body = self.pin("verify", {"pin": "12"})
        self.assertEqual((status, body["error"]["code"]), (400, "PIN_FORMAT"))
        status, body = self.pin("unblock", {"puk": "12345678", "new_pin": "123456"})
        self.assertEqual((status, body["error"]["code"]), (429, "PIN_TOO_SOON"))
        self.assertEqual(pcsc.read_card_state(self.state)["puk_tries"], 2)


class PcscdRestart(CardTest):
    def status_pcsc(self, want):
        """/api/v1/status's pcsc, readers and cards once they are `want`
        (the hotplug monitor learns a change a moment after PC/SC)."""
        deadline = time.monotonic() + 10
        while True:
            status, _, body = self.agent.get_json("/api/v1/status")
            self.assertEqual(status, 200, body)
            got = (body["pcsc"]["available"], body["readers"], body["cards"])
            if got == want or time.monotonic() > deadline:
                return got

    @contextlib.contextmanager
    def fake_pcscd(self, readers):
        """pcsc.FakePcscd(readers) in place of the test's pcscd (card out,
        pcscd killed); afterwards the real one and the card are back and
        the token is listed again."""
        self.card.remove()
        self.pcscd.kill()
        fake = pcsc.FakePcscd(readers=readers)
        try:
            yield fake
        finally:
            fake.close()
            self.pcscd.start()
        self.card = self.insert()
        self.assertEqual(self.tokens()["tokens"][0]["id"], TOKEN)

    def test_pcscd_ending_mid_answer_is_unavailable_not_a_card_error(self):
        """pcscd crashing in the middle of an answer (pcsc-lite's client:
        SCARD_F_COMM_ERROR) is the service gone, asked once more on a new
        context; seen in test_load as a listing's CARD_ERROR."""
        with self.fake_pcscd(readers=lambda n: None):
            status, _, raw = self.agent.request("GET", "/api/v1/tokens")
            self.assertEqual((status, json.loads(raw)["error"]["code"]), (503, "PCSC_UNAVAILABLE"), raw)
            self.assertTrue(self.agent.alive())

    def test_a_reader_coming_between_the_two_list_calls(self):
        """A reader that comes between SCardListReaders' length and its list
        (pcscd loading its drivers one by one after a start) made the
        second call SCARD_E_INSUFFICIENT_BUFFER, a listing's CARD_ERROR in
        test_load: the two are made again."""
        names = ["Fake PCD 00 00", "Fake PCD 00 01"]
        with self.fake_pcscd(readers=lambda n: names[:1] if n == 0 else names):
            status, _, body = self.agent.get_json("/api/v1/tokens")
            self.assertEqual(status, 200, body)
            self.assertEqual([(r["name"], r["state"]) for r in body["readers"]], [(n, "empty") for n in names])

    def test_tokens_and_events_come_back_after_pcscd_restart(self):
        self.assertEqual(self.tokens()["tokens"][0]["id"], TOKEN)
        readers = len(self.tokens()["readers"])  # vpcd's
        self.assertEqual(self.status_pcsc((True, readers, 1)), (True, readers, 1))
        tab = EventStream(self.agent)
        try:
            self.card.remove()
            self.assertEqual(self.status_pcsc((True, readers, 0)), (True, readers, 0))
            self.pcscd.kill()
            # Issue 19: status answers from the hotplug monitor, which sees pcscd go.
            self.assertEqual(self.status_pcsc((False, 0, 0)), (False, 0, 0))
            status, _, body = self.agent.get_json("/api/v1/status")
            self.assertEqual(body["pcsc"]["error"], "SCARD_E_NO_SERVICE")
            status, _, raw = self.agent.request("GET", "/api/v1/tokens")
            self.assertEqual((status, json.loads(raw)["error"]["code"]), (503, "PCSC_UNAVAILABLE"))
            self.pcscd.start()
            # Back at once, before the monitor's next look (it is told to look now).
            status, _, body = self.agent.get_json("/api/v1/status")
            self.assertTrue(body["pcsc"]["available"], body)
            self.assertEqual(self.status_pcsc((True, readers, 0)), (True, readers, 0))
            self.card = pcsc.VirtualCard(self.pcscd, self.state).insert()
            self.assertEqual(self.status_pcsc((True, readers, 1)), (True, readers, 1))
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                status, _, body = self.agent.get_json("/api/v1/tokens")
                if status == 200 and body["tokens"]:
                    break
                time.sleep(0.2)
            self.assertEqual(body["tokens"][0]["id"], TOKEN)
            # The hotplug monitor reconnected to the new pcscd by itself.
            inserted = ("token-inserted", {"reader": pcsc.READER, "token": TOKEN})
            self.assertIn(inserted, tab.wait_for_event(inserted, timeout=20))
        finally:
            tab.close()


if __name__ == "__main__":
    harness.main()
