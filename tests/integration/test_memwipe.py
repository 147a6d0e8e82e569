"""No PIN stays in the agent's memory after use (issue 17, finding 5; red
team 2 W5 found a whole login request, PIN included, in freed heap inside
the TLS front's relay buffer). Through the virtual card, with marker PINs:
a page-mode login with the right PIN, a PIN check with a wrong one, and a
consent-window login; then, once the connections are closed, every private
writable mapping of the agent (heap, anonymous memory, thread stacks) is
read as root through /proc/PID/mem and must not hold either marker.

In the sanitizer build freed blocks wait in ASan's quarantine instead of
being reused, so nothing that was not wiped gets overwritten by chance: the
check is stricter there. Mappings over 1 GiB are ASan's shadow and
allocator reservations (no heap data of ours is found by address there)."""
import base64
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402

PAGE = "https://page.gov.example"        # "pin_entry": "page"
CONSENT = "https://consent.gov.example"  # the agent's window asks
RIGHT_PIN = "86429753"                   # the card's PIN: a marker found nowhere else
WRONG_PIN = "97979797"                   # a well-formed wrong PIN
CHALLENGE = base64.b64encode(os.urandom(32)).decode()
JSON = {"Content-Type": "application/json"}
HUGE = 1 << 30


def agent_memory(pid):
    """Yields (name, start address, bytes) for each private writable mapping."""
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if not fields[1].startswith("rw") or fields[1][3] != "p" or end - start > HUGE:
                continue
            try:
                mem.seek(start)
                yield (fields[5] if len(fields) > 5 else "[anon]"), start, mem.read(end - start)
            except OSError:
                continue  # e.g. a guard page


class SecretsWiped(pcsc.CardCase):
    agent_config = {"allow_origins": [{"origin": PAGE, "pin_entry": "page"}, CONSENT],
                    "limits": {"idle_timeout_s": 5}}

    def write_state(self, path):
        pcsc.write_card_state(path, self.pki, pin=RIGHT_PIN)

    def call(self, method, path, body=None, headers=None, conn=None):
        status, _, raw = self.agent.request(method, path, dict(headers or {}, **(JSON if body is not None else {})),
                                            None if body is None else json.dumps(body), conn=conn)
        return status, json.loads(raw) if raw else None

    def find_markers(self):
        found = []
        for name, start, data in agent_memory(self.agent.proc.pid):
            for marker in (RIGHT_PIN, WRONG_PIN):
                for m in re.finditer(re.escape(marker.encode()), data):
                    found.append("%s at %#x in %s: %r" % (marker, start + m.start(), name,
                                                          data[max(0, m.start() - 48):m.end() + 16]))
        return found

    def test_no_pin_in_memory_after_logins(self):
        token_id = self.tokens()["tokens"][0]["id"]
        status, r = self.call("POST", "/api/v1/login", {"challenge": CHALLENGE, "consent": True}, {"Origin": CONSENT})
        self.assertEqual(status, 202, r)
        rid = r["request"]
        # Three keep-alive connections at once, each carrying a PIN, all
        # closed by the client before the agent's memory is read (a later
        # connection would be allocated over a freed one's buffers).
        conns = [self.agent.connect() for _ in range(3)]
        try:
            status, token = self.call("POST", "/api/v1/login", {"challenge": CHALLENGE, "pin": RIGHT_PIN},
                                      {"Origin": PAGE}, conn=conns[0])
            self.assertEqual(status, 200, token)
            status, r = self.call("POST", "/api/v1/tokens/%s/pin/verify" % token_id, {"pin": WRONG_PIN},
                                  {"Origin": PAGE}, conn=conns[1])
            self.assertEqual((status, r["error"]["code"]), (403, "PIN_INCORRECT"), r)
            own = "https://127.0.0.1:%d" % self.agent.port
            status, r = self.call("POST", "/api/v1/consent/" + rid, {"pin": RIGHT_PIN},
                                  {"Origin": own, "Sec-Fetch-Site": "same-origin"}, conn=conns[2])
            self.assertEqual(status, 200, r)
        finally:
            for c in conns:
                c.close()
        time.sleep(1.5)  # the agent closes its sides of the connections
        found = self.find_markers()
        self.assertFalse(found, "\n".join(found[:20]))

if __name__ == "__main__":
    harness.main()
