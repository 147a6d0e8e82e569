"""Renewal reminders (issue 18): desktop notifications over D-Bus when an
inserted token's certificate expires soon. A private dbus-daemon, a fake
notification server on it (notifyd.py), a private pcscd and the virtual
PIV card whose authentication certificate expires in 10 days; the agent
talks to the private bus through DBUS_SESSION_BUS_ADDRESS and opens links
with a test `xdg-open` found first on its PATH."""
import datetime
import json
import os
import shutil
import stat
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
import notifyd  # noqa: E402

CHECKED = r"reminders: checked \d+ certificate"
RENEW_URL = "https://renew.example.gov.cn/renew?from=ukey&x=1"
WARNING = r"reminders: .*no desktop notifications"


def expiry_date(pki, slot="9a"):
    """The local calendar day of the certificate's notAfter: the agent counts
    "expires in N days" in the user's time zone."""
    out = harness.run_tool("openssl", "x509", "-noout", "-enddate", "-dateopt", "iso_8601", input=pki[slot][0])
    stamp = datetime.datetime.strptime(out.stdout.strip(), "notAfter=%Y-%m-%d %H:%M:%SZ")
    return datetime.datetime.fromtimestamp(stamp.replace(tzinfo=datetime.timezone.utc).timestamp()).date()


def days_since(first):
    """The local days a step that began on `first` ran on: it may have
    crossed midnight, and the agent counts calendar days."""
    return sorted({first, datetime.date.today()})


class Reminders(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pcscd = pcsc.Pcscd().start()
        cls.dir = tempfile.mkdtemp(prefix="ukey-reminders-")
        pki = pcsc.make_pki(cls.dir)
        cls.soon = pcsc.issue_for_slot(cls.dir, pki, "9a", 10)
        cls.later = pcsc.issue_for_slot(cls.dir, pki, "9a", 100)
        cls.expired = pcsc.issue_for_slot(cls.dir, pki, "9a", 10, start_days_ago=13)
        cls.bus = notifyd.SessionBus(cls.dir)
        cls.server = notifyd.NotificationServer(cls.bus, cls.dir)
        # The opener: records its arguments, as xdg-open would be given them.
        cls.bin = os.path.join(cls.dir, "bin")
        os.mkdir(cls.bin)
        cls.opened = os.path.join(cls.dir, "opened.txt")
        with open(os.path.join(cls.bin, "xdg-open"), "w") as f:
            f.write('#!/bin/sh\nprintf "%%s|" "$@" >> %s\necho >> %s\n' % (cls.opened, cls.opened))
        os.chmod(os.path.join(cls.bin, "xdg-open"), 0o755)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.bus.stop()
        cls.pcscd.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.cards, self.agents = [], []

    def tearDown(self):
        for card in self.cards:
            card.remove()
        failures = []
        for agent in self.agents:
            try:
                agent.cleanup()
            except AssertionError as e:
                failures.append(str(e))
        self.assertEqual(failures, [])

    def start_agent(self, state_dir=None, bus=True, args=(), config=None, url=RENEW_URL):
        env = {"PATH": self.bin + ":" + os.environ["PATH"]}
        env["DBUS_SESSION_BUS_ADDRESS"] = self.bus.address if bus else "unix:path=" + os.path.join(self.dir, "none")
        agent = harness.Agent(args=list(args), config=self.with_profile(config, url), state_dir=state_dir, env=env)
        self.agents.append(agent.start())
        # The first check (for tokens already present) has run.
        self.assertTrue(agent.wait_log(CHECKED, 1), agent.log_text())
        return agent

    def with_profile(self, config, url):
        """The agent's config with only (when `url`) a deployment profile of
        the test CA whose renewal page is `url`."""
        config = dict(config or {}, profile_dirs=[])
        if url:
            path = os.path.join(self.dir, "test-ca-profile.json")
            with open(path, "w") as f:
                json.dump({"id": "test-ca", "name": {"zh-CN": "测试 CA", "en": "Test CA"},
                           "issuers": [{"subject": "CN=ukey test CA, O=ukey-agent tests"}],
                           "links": {"renew": url}}, f)
            config["profiles"] = [path]
        return config

    def insert(self, agent, pki, name="card"):
        """Inserts a card with `pki`'s 9a and 9c and waits for the check it causes."""
        path = os.path.join(self.dir, "%s-%s.json" % (self.id().rsplit(".", 1)[1], name))
        pcsc.write_card_state(path, pki)
        checked = agent.log_count(CHECKED)
        card = pcsc.VirtualCard(self.pcscd, path).insert()
        self.cards.append(card)
        self.assertTrue(agent.wait_log(CHECKED, checked + 1), agent.log_text())
        return card

    def reinsert(self, agent, card):
        card.remove()
        checked = agent.log_count(CHECKED)
        card.insert()
        self.assertTrue(agent.wait_log(CHECKED, checked + 1), agent.log_text())

    def read_opened(self):
        """What the test xdg-open was given so far."""
        if not os.path.exists(self.opened):
            return ""
        with open(self.opened) as f:
            return f.read()

    def new_calls(self, before, count, settle=1.0):
        """The Notify calls after the first `before`, once there are `count`
        (and no more came during `settle` seconds)."""
        deadline = time.monotonic() + 10
        while len(self.server.calls()) < before + count and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(settle)
        calls = self.server.calls()[before:]
        self.assertEqual(len(calls), count, calls)
        return calls

    def shown(self, agent):
        path = os.path.join(agent.state_dir, "reminders.json")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            data = json.load(f)
        self.assertEqual(data["version"], 1)
        return data["shown"]

    def test_once_per_certificate_per_day_and_the_renew_action(self):
        before = len(self.server.calls())
        first = datetime.date.today()
        agent = self.start_agent()
        card = self.insert(agent, self.soon)
        (call,) = self.new_calls(before, 1)
        days = days_since(first)
        self.assertEqual(call["app_name"], "ukey-agent")
        self.assertEqual(call["summary"], "证书即将到期 / Certificate expires soon")
        zh, en, issuer = call["body"].split("\n")
        self.assertIn("张三", zh)
        self.assertIn("张三", en)
        # 10 days from when the certificate was made, in calendar days.
        left = [(expiry_date(self.soon) - day).days for day in days]
        self.assertTrue(any("还有 %d 天到期" % n in zh for n in left), (zh, left))
        self.assertTrue(any("expires in %d days" % n in en for n in left), (en, left))
        self.assertEqual(issuer, "颁发者 / Issuer: ukey test CA")
        self.assertEqual(call["actions"], ["renew", "去续期 / Renew"])
        self.assertEqual(call["hints"], {"urgency": 1})
        self.assertEqual(call["expire_timeout"], -1)
        shown = self.shown(agent)
        self.assertIn(list(shown.values()), [[day.isoformat()] for day in days])

        # The desktop's "renew" button: xdg-open gets the URL, as one argument.
        self.server.emit("ActionInvoked", call["id"], "renew")
        deadline = time.monotonic() + 10
        while not self.read_opened() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.read_opened(), RENEW_URL + "|\n")
        # Another action key, or the notification closed and then clicked: nothing opened.
        self.server.emit("ActionInvoked", call["id"], "default")
        self.server.emit("NotificationClosed", call["id"])
        self.server.emit("ActionInvoked", call["id"], "renew")
        time.sleep(1)
        self.assertEqual(self.read_opened(), RENEW_URL + "|\n")

        # The same day again: remembered, also across a restart of the agent.
        self.reinsert(agent, card)
        self.new_calls(before + 1, 0)
        agent.stop()
        agent = self.start_agent(state_dir=agent.state_dir)
        self.reinsert(agent, card)
        self.new_calls(before + 1, 0)

        # The next day (the record says it was shown yesterday): once more.
        key = list(shown)[0]
        first = datetime.date.today()
        with open(os.path.join(agent.state_dir, "reminders.json"), "w") as f:
            json.dump({"version": 1, "shown": {key: (first - datetime.timedelta(days=1)).isoformat()}}, f)
        self.reinsert(agent, card)
        self.new_calls(before + 1, 1)
        self.assertIn(self.shown(agent), [{key: day.isoformat()} for day in days_since(first)])
        self.assertEqual(agent.log_count(WARNING), 0, agent.log_text())

    def test_far_expiry_raises_nothing(self):
        before = len(self.server.calls())
        agent = self.start_agent()
        self.insert(agent, self.later)
        self.new_calls(before, 0)
        self.assertFalse(os.path.exists(os.path.join(agent.state_dir, "reminders.json")))

    def test_renew_through_the_desktop_portal(self):
        """With an XDG Desktop Portal on the bus the desktop opens the page
        (the browser is not the agent's child); xdg-open is not run."""
        bus_dir = tempfile.mkdtemp(prefix="bus-", dir=self.dir)
        other = notifyd.SessionBus(bus_dir)
        server = notifyd.NotificationServer(other, bus_dir, portal=True)
        try:
            opened_before = self.read_opened()
            agent = harness.Agent(config=self.with_profile(None, RENEW_URL),
                                  env={"DBUS_SESSION_BUS_ADDRESS": other.address,
                                       "PATH": self.bin + ":" + os.environ["PATH"]})
            self.agents.append(agent.start())
            self.assertTrue(agent.wait_log(CHECKED, 1))
            self.insert(agent, self.soon)
            deadline = time.monotonic() + 10
            while not server.calls() and time.monotonic() < deadline:
                time.sleep(0.05)
            (call,) = server.calls()
            server.emit("ActionInvoked", call["id"], "renew")
            deadline = time.monotonic() + 10
            while not server.opened() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            self.assertEqual(server.opened(), [RENEW_URL])
            self.assertEqual(self.read_opened(), opened_before)
            agent.stop()
        finally:
            server.stop()
            other.stop()

    def test_expired(self):
        before = len(self.server.calls())
        first = datetime.date.today()
        agent = self.start_agent()
        self.insert(agent, self.expired)
        (call,) = self.new_calls(before, 1)
        self.assertEqual(call["summary"], "证书已过期 / Certificate expired")
        zh, en, _ = call["body"].split("\n")
        # 3 days ago when the certificate was made, in calendar days.
        ago = [(day - expiry_date(self.expired)).days for day in days_since(first)]
        self.assertTrue(any("过期（%d 天前）" % n in zh for n in ago), (zh, ago))
        self.assertTrue(any("(%d days ago)" % n in en for n in ago), (en, ago))

    def test_no_url_no_action(self):
        before = len(self.server.calls())
        agent = self.start_agent(url=None)
        self.insert(agent, self.soon)
        (call,) = self.new_calls(before, 1)
        self.assertEqual(call["actions"], [])

    def test_damaged_and_old_records(self):
        state = tempfile.mkdtemp(prefix="state-", dir=self.dir)
        os.chmod(state, 0o700)
        path = os.path.join(state, "reminders.json")
        for text, why in (("{not json", "damaged"),
                          ('{"version": 1, "shown": {"abc": "2026-01-01"}}', "damaged"),
                          ('{"version": 2, "shown": {}}', "damaged")):
            with open(path, "w") as f:
                f.write(text)
            before = len(self.server.calls())
            agent = self.start_agent(state_dir=state)
            self.assertEqual(agent.log_count(why), 0)
            self.insert(agent, self.soon, name=str(len(self.agents)))
            self.new_calls(before, 1)
            self.assertEqual(agent.log_count(r"reminders: .*reminders\.json is damaged"), 1, agent.log_text())
            self.assertEqual(len(self.shown(agent)), 1)
            self.cards.pop().remove()
            agent.stop()
        # Entries older than 60 days go, recent ones stay; this card's was
        # 61 days ago, so it is shown again.
        key = list(self.shown(agent))[0]
        old = (datetime.date.today() - datetime.timedelta(days=61)).isoformat()
        recent = (datetime.date.today() - datetime.timedelta(days=59)).isoformat()
        with open(path, "w") as f:
            json.dump({"version": 1, "shown": {key: old, "0" * 64: recent, "1" * 64: old}}, f)
        before = len(self.server.calls())
        first = datetime.date.today()
        agent = self.start_agent(state_dir=state)
        self.insert(agent, self.soon, name="old")
        self.new_calls(before, 1)
        self.assertIn(self.shown(agent), [{key: day.isoformat(), "0" * 64: recent} for day in days_since(first)])

    def test_no_bus_one_line_and_the_agent_serves(self):
        before = len(self.server.calls())
        agent = self.start_agent(bus=False)
        card = self.insert(agent, self.soon)
        self.reinsert(agent, card)
        self.assertEqual(agent.log_count(WARNING), 1, agent.log_text())
        status, _, body = agent.get_json("/api/v1/tokens")
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body["tokens"]), 1)
        self.new_calls(before, 0, settle=0)
        # Not remembered: shown once a desktop is there.
        self.assertFalse(os.path.exists(os.path.join(agent.state_dir, "reminders.json")))

    def test_no_notification_server_then_one_then_the_bus_gone(self):
        bus_dir = tempfile.mkdtemp(prefix="bus-", dir=self.dir)
        other = notifyd.SessionBus(bus_dir)
        server = None
        try:
            agent = harness.Agent(env={"DBUS_SESSION_BUS_ADDRESS": other.address})
            self.agents.append(agent.start())
            self.assertTrue(agent.wait_log(CHECKED, 1))
            # A bus, but nobody serves notifications: one line, however often.
            card = self.insert(agent, self.soon)
            self.reinsert(agent, card)
            self.assertEqual(agent.log_count(WARNING), 1, agent.log_text())
            self.assertEqual(agent.get_json("/api/v1/status")[0], 200)
            # A desktop comes: the reminder, not remembered before, is shown.
            server = notifyd.NotificationServer(other, bus_dir)
            self.reinsert(agent, card)
            deadline = time.monotonic() + 10
            while not server.calls() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(len(server.calls()), 1)
            # The session ends (bus and server gone): the agent does not
            # spin on the dead connection and serves on.
            server.stop()
            server = None
            other.stop()
            other = None
            self.assertTrue(agent.wait_log("reminders: the D-Bus session bus went away", 1), agent.log_text())
            with open("/proc/%d/stat" % agent.proc.pid) as f:
                cpu = sum(int(v) for v in f.read().rsplit(")", 1)[1].split()[11:13])
            time.sleep(2)
            with open("/proc/%d/stat" % agent.proc.pid) as f:
                used = sum(int(v) for v in f.read().rsplit(")", 1)[1].split()[11:13]) - cpu
            self.assertLess(used, 50, "clock ticks used in 2 s while idle")
            self.assertEqual(agent.get_json("/api/v1/status")[0], 200)
        finally:
            if server:
                server.stop()
            if other:
                other.stop()

    def test_turned_off(self):
        before = len(self.server.calls())
        for args, config in ((["--no-reminders"], None), ([], {"reminders": False})):
            agent = harness.Agent(args=args, config=config, env={"DBUS_SESSION_BUS_ADDRESS": self.bus.address})
            self.agents.append(agent.start())
            card = self.insert_plain(agent)
            card.remove()
            self.cards.remove(card)
            self.assertEqual(agent.log_count(CHECKED), 0)
        self.new_calls(before, 0)
        bad = harness.Agent(config={"reminders": "yes"})
        proc = harness.run_tool(*bad.command(), check=False, env=bad.env)
        bad.cleanup()
        self.assertEqual(proc.returncode, 2)
        self.assertIn("reminders", proc.stderr)
        self.assertIn("true or false", proc.stderr)

    def insert_plain(self, agent):
        """Inserts the 10-day card into an agent without reminders."""
        path = os.path.join(self.dir, "%s-%d.json" % (self.id().rsplit(".", 1)[1], len(self.agents)))
        pcsc.write_card_state(path, self.soon)
        seen = agent.log_count(pcsc.INSERTED_LOG)
        card = pcsc.VirtualCard(self.pcscd, path).insert()
        self.cards.append(card)
        self.assertTrue(agent.wait_log(pcsc.INSERTED_LOG, seen + 1))
        return card


if __name__ == "__main__":
    harness.main()
