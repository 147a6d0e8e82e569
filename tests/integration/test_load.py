"""Load and faults (issue 8), bounded in time: 100 concurrent clients mix
status, token listing, event streams, diagnostics and logins (right PINs,
and wrong ones from one client, each followed by a right one) against one
virtual token.

60 s of load in all. Phase 1, 30 s without faults: every request is answered correctly or with
TOKEN_BUSY; the PIN reaches the card exactly once per PIN request that says
it did (counted in the virtual card's APDU log) and the counter never drops
below 2; the agent's memory stays flat.
Phase 2, 30 s of faults under the same load: the card pulled out and put
back, pcscd killed and restarted, the card answering slowly and with bad
data, the state directory read-only, the CRL server stalling. Every answer
is one the fault explains, the agent never dies, and it recovers by itself.
Long soaks belong in bench/, not here."""
import base64
import collections
import json
import os
import random
import shutil
import stat
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
import pki as testpki  # noqa: E402

CLIENTS = 100
# The clients come from 20 portals, 5 each: one origin may have at most 8
# requests at the card (issue 17), and this test loads the card, not that
# quota (test_consent.py tests it).
PORTALS = ["https://portal%d.gov.example" % i for i in range(20)]


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int([l for l in f if l.startswith("VmRSS:")][0].split()[1])


class Load(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pcscd = pcsc.Pcscd().start()
        cls.dir = tempfile.mkdtemp(prefix="ukey-load-")
        cls.crl = testpki.PkiServer(cls.dir)
        cls.pki = pcsc.make_pki(cls.dir, crl_url=cls.crl.url + "/ca.crl")
        pcsc.make_crl(cls.dir)
        cls.state = os.path.join(cls.dir, "card.json")
        pcsc.write_card_state(cls.state, cls.pki)
        cls.card = pcsc.VirtualCard(cls.pcscd, cls.state).insert()
        # In the sanitizer build, freed memory waits in ASan's quarantine
        # (256 MiB by default) and would read as growth: keep it small, so
        # that "memory flat" measures what the agent itself holds.
        asan = os.environ.get("ASAN_OPTIONS", "")
        cls.agent = harness.Agent(args=["--ca-file", os.path.join(cls.dir, "ca.pem")], config={
            "allow_origins": [{"origin": p, "pin_entry": "page"} for p in PORTALS],
            "limits": {"fetch_timeout_s": 2, "max_connections": 512}},
            env={"ASAN_OPTIONS": (asan + ":" if asan else "") + "quarantine_size_mb=4"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.agent.cleanup()
        cls.card.remove()
        cls.pcscd.cleanup()
        cls.crl.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def agent_warnings(self):
        return "\n".join([l for l in self.agent.log_text().splitlines()
                          if " warn:" in l or " error:" in l or "CARD_ERROR" in l][-30:])

    def run_load(self, seconds, allowed):
        """CLIENTS threads for `seconds`; returns {(action, outcome): count}
        and the list of unexpected answers."""
        deadline = time.monotonic() + seconds
        tally = collections.Counter()
        unexpected = []
        lock = threading.Lock()
        agent = self.agent

        def record(action, outcome):
            with lock:
                tally[(action, outcome)] += 1
                if outcome not in allowed[action]:
                    unexpected.append((action, outcome))

        def call(origin, method, path, body=None):
            # A card answering 300 ms per APDU takes seconds per operation,
            # and a request may first wait up to 5 s for its turn on the card.
            headers = {"Origin": origin}
            if body is not None:
                headers["Content-Type"] = "application/json"
            status, _, raw = agent.request(method, path, headers,
                                           None if body is None else json.dumps(body), timeout=30)
            data = json.loads(raw) if raw else {}
            return status, data.get("error", {}).get("code", "OK") if status >= 400 else "OK", data

        def worker(n):
            rnd = random.Random(n)
            origin = PORTALS[n % len(PORTALS)]

            def login(pin):
                challenge = base64.b64encode(os.urandom(32)).decode()
                return call(origin, "POST", "/api/v1/login", {"challenge": challenge, "pin": pin})

            while time.monotonic() < deadline:
                try:
                    if n == 0:   # the only client that types a wrong PIN, then the right one
                        _, code, data = login("000000")
                        record("wrong-pin", code + (":%s" % data["error"].get("retries_left") if code == "PIN_INCORRECT" else ""))
                        record("login", login("123456")[1])
                        continue
                    pick = rnd.random()
                    if pick < 0.40:
                        record("status", call(origin, "GET", "/api/v1/status")[1])
                    elif pick < 0.65:
                        record("tokens", call(origin, "GET", "/api/v1/tokens")[1])
                    elif pick < 0.75:
                        conn = agent.connect(timeout=30)
                        try:
                            conn.request("GET", "/api/v1/events", headers={"Host": "127.0.0.1:%d" % agent.port,
                                                                           "Origin": origin})
                            resp = conn.getresponse()
                            ok = resp.status == 200 and b"retry:" in resp.read1(256)
                            record("events", "OK" if ok else json.loads(resp.read() or b"{}").get(
                                "error", {}).get("code", str(resp.status)))
                        finally:
                            conn.close()
                    elif pick < 0.77:
                        record("diagnostics", call(origin, "GET", "/api/v1/diagnostics?lang=en")[1])
                    else:
                        record("login", login("123456")[1])
                except OSError as e:
                    record("connection", type(e).__name__)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        return threads, tally, unexpected

    def test_1_load_without_faults(self):
        allowed = collections.defaultdict(lambda: {"OK"})
        # Closed event streams keep their slot until the next ping (15 s);
        # past 256 a new one is told to come back (and the dead are pinged out).
        allowed["events"] = {"OK", "AGENT_BUSY"}
        allowed["tokens"] = {"OK", "TOKEN_BUSY"}
        allowed["login"] = {"OK", "TOKEN_BUSY"}
        allowed["wrong-pin"] = {"PIN_INCORRECT:2", "TOKEN_BUSY"}
        allowed["diagnostics"] = {"OK", "AGENT_BUSY"}
        log_before = len(self.card.apdu_log())
        threads, tally, unexpected = self.run_load(30, allowed)
        time.sleep(8)
        rss_early = rss_kb(self.agent.proc.pid)
        for t in threads:
            t.join(120)
        rss_late = rss_kb(self.agent.proc.pid)
        print("phase 1:", dict(tally), "RSS %d -> %d KiB" % (rss_early, rss_late), file=sys.stderr)
        self.assertEqual(collections.Counter(unexpected), collections.Counter(), self.agent_warnings())
        self.assertTrue(self.agent.alive())
        self.assertGreater(tally[("login", "OK")], 20)
        self.assertGreater(tally[("status", "OK")], 200)
        # The PIN reached the card once per PIN request that reached it, no more.
        verifies = [l for l in self.card.apdu_log()[log_before:] if " 20 00 80 lc=8" in l]
        self.assertEqual(len(verifies), tally[("login", "OK")] + tally[("wrong-pin", "PIN_INCORRECT:2")])
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)
        # Memory flat: what the agent holds after the first seconds it still holds at the end.
        self.assertLess(rss_late - rss_early, 16 * 1024, (rss_early, rss_late))

    def test_2_faults_under_load(self):
        card_gone = {"TOKEN_REMOVED", "TOKEN_NOT_FOUND", "CARD_ERROR", "PCSC_UNAVAILABLE", "TOKEN_BUSY",
                     "CARD_DATA_INVALID", "TOKEN_NOT_SUPPORTED", "CERT_NOT_FOUND"}
        allowed = collections.defaultdict(lambda: {"OK"})
        allowed["tokens"] = {"OK", "PCSC_UNAVAILABLE", "TOKEN_BUSY"}
        allowed["events"] = {"OK", "AGENT_BUSY"}
        # A wrong PIN whose right one then met a pulled card leaves the
        # counter lower: the agent then guards the last try.
        allowed["login"] = {"OK", "PIN_LAST_ATTEMPT"} | card_gone
        allowed["wrong-pin"] = {"PIN_INCORRECT:2", "PIN_INCORRECT:1", "PIN_LAST_ATTEMPT"} | card_gone
        allowed["diagnostics"] = {"OK", "AGENT_BUSY"}
        threads, tally, unexpected = self.run_load(30, allowed)
        faults = []
        try:
            time.sleep(2)
            faults.append("card removed")
            self.card.remove()
            time.sleep(3)
            self.card.insert()
            time.sleep(3)
            faults.append("pcscd killed")
            self.card.remove()
            self.pcscd.kill()
            time.sleep(2)
            self.pcscd.start()
            self.card.insert()
            time.sleep(3)
            faults.append("slow card")
            self.card.remove()
            slow = pcsc.VirtualCard(self.pcscd, self.state, faults=("slow=300",)).insert()
            time.sleep(4)
            slow.remove()
            faults.append("garbage from the card")
            bad = pcsc.VirtualCard(self.pcscd, self.state, faults=("bad-tlv",)).insert()
            time.sleep(3)
            bad.remove()
            self.card.insert()
            faults.append("state directory read-only")
            os.chmod(self.agent.state_dir, stat.S_IRUSR | stat.S_IXUSR)
            faults.append("CRL server stalling")
            self.crl.modes["/ca.crl"] = "stall"
            time.sleep(4)
        finally:
            os.chmod(self.agent.state_dir, stat.S_IRWXU)
            self.crl.modes.clear()
            for t in threads:
                t.join(120)
        print("phase 2:", faults, dict(tally), file=sys.stderr)
        self.assertEqual(collections.Counter(unexpected), collections.Counter(), self.agent_warnings())
        self.assertTrue(self.agent.alive())
        # Recovered on its own: the token is listed again and a login works.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status, _, raw = self.agent.request("GET", "/api/v1/tokens")
            if status == 200 and json.loads(raw)["tokens"]:
                break
            time.sleep(0.5)
        challenge = base64.b64encode(os.urandom(32)).decode()
        status, _, raw = self.agent.request("POST", "/api/v1/login",
                                            {"Content-Type": "application/json", "Origin": PORTALS[0]},
                                            json.dumps({"challenge": challenge, "pin": "123456",
                                                        "confirm_last_attempt": True}))
        self.assertEqual(status, 200, raw)
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 3)


if __name__ == "__main__":
    harness.main()
