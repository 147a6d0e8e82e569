"""`ukey-agent trust install|status|uninstall` against a temporary HOME with
a Chromium NSS database and Firefox profiles (security.md 4.3, TLS-05,
TLS-07). The system store is never touched here (--no-system)."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent as harness  # noqa: E402
from agent import run_tool  # noqa: E402

NICK = re.compile(r"^(ukey-agent local CA [0-9a-f]{16})\s+(\S+)\s*$", re.M)


class Trust(unittest.TestCase):
    def setUp(self):
        self.home = tempfile.mkdtemp(prefix="ukey-trust-")
        self.state = os.path.join(self.home, "state")
        self.env = dict(os.environ, HOME=self.home)
        for k in ("XDG_DATA_HOME", "XDG_CONFIG_HOME"):
            self.env.pop(k, None)
        self.chromium = os.path.join(self.home, ".pki", "nssdb")
        self.firefox = os.path.join(self.home, ".mozilla", "firefox", "abcd.default-release")
        for db in (self.chromium, self.firefox):
            os.makedirs(db)
            run_tool("certutil", "-N", "-d", "sql:" + db, "--empty-password")

    def tearDown(self):
        shutil.rmtree(self.home, ignore_errors=True)

    def trust(self, *args, check=True):
        r = subprocess.run([harness.AGENT, "trust", *args, "--no-system", "--state-dir", self.state],
                           env=self.env, capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            self.fail("trust %s failed (%d):\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def nicks(self, db):
        out = run_tool("certutil", "-L", "-d", "sql:" + db).stdout
        return NICK.findall(out)

    def ca_fingerprint_nick(self):
        fp = run_tool("openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in",
                      os.path.join(self.state, "ca.crt")).stdout.split("=")[1].replace(":", "").strip()
        return "ukey-agent local CA " + fp.lower()[:16]

    def status(self):
        r = self.trust("status", "--json", check=False)
        return r.returncode, json.loads(r.stdout)

    def test_install_status_uninstall(self):
        r = self.trust("install")
        self.assertIn("Chromium", r.stdout)
        self.assertIn("Firefox profile abcd.default-release", r.stdout)
        nick = self.ca_fingerprint_nick()
        for db in (self.chromium, self.firefox):
            self.assertEqual(self.nicks(db), [(nick, "C,,")], db)  # TLS servers only
        code, st = self.status()
        self.assertEqual(code, 0)
        nss = [s for s in st["stores"] if s["kind"] == "nss"]
        self.assertEqual(len(nss), 2)
        self.assertTrue(all(s["current_ca"] and s["old_cas"] == 0 for s in nss), st)
        with open(os.path.join(self.state, "trust.json")) as f:
            recorded = json.load(f)["stores"]
        self.assertEqual(sorted(s["path"] for s in recorded),
                         sorted("sql:" + d for d in (self.chromium, self.firefox)))
        self.assertEqual(oct(os.stat(os.path.join(self.state, "trust.json")).st_mode & 0o777), "0o600")

        # Installing again leaves exactly one ukey-agent CA per database.
        self.trust("install")
        for db in (self.chromium, self.firefox):
            self.assertEqual(len(self.nicks(db)), 1)

        self.trust("uninstall")
        for db in (self.chromium, self.firefox):
            self.assertEqual(self.nicks(db), [], db)
        code, st = self.status()
        self.assertEqual(code, 1)
        self.assertFalse(any(s["current_ca"] for s in st["stores"] if s["kind"] == "nss"))

    def test_new_identity_replaces_old_ca(self):
        self.trust("install")
        old = self.ca_fingerprint_nick()
        shutil.rmtree(self.state)  # a fresh install: a new CA
        self.trust("install")
        new = self.ca_fingerprint_nick()
        self.assertNotEqual(old, new)
        for db in (self.chromium, self.firefox):
            self.assertEqual(self.nicks(db), [(new, "C,,")])

    def test_uninstall_removes_cas_of_earlier_installs(self):
        self.trust("install")
        shutil.rmtree(self.state)  # the databases now hold a CA of an earlier install
        self.trust("uninstall")
        for db in (self.chromium, self.firefox):
            self.assertEqual(self.nicks(db), [])

    def test_status_reports_old_cas(self):
        self.trust("install")
        shutil.rmtree(self.state)
        code, st = self.status()
        self.assertEqual(code, 1)
        for s in st["stores"]:
            if s["kind"] == "nss":
                self.assertFalse(s["current_ca"])
                self.assertEqual(s["old_cas"], 1)
        text = self.trust("status", check=False).stdout
        self.assertIn("older ukey-agent CA", text)

    def test_home_without_stores_gets_chromium_db(self):
        shutil.rmtree(os.path.join(self.home, ".pki"))
        shutil.rmtree(os.path.join(self.home, ".mozilla"))
        self.trust("install")
        self.assertEqual(len(self.nicks(self.chromium)), 1)

    def test_firefox_dir_without_db_is_ignored(self):
        os.makedirs(os.path.join(self.home, ".mozilla", "firefox", "Crash Reports"))
        os.makedirs(os.path.join(self.home, ".mozilla", "firefox", "empty.profile"))
        r = self.trust("install")
        self.assertNotIn("Crash Reports", r.stdout)
        self.assertNotIn("empty.profile", r.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.home, ".mozilla", "firefox", "empty.profile",
                                                     "cert9.db")))

    def test_broken_database_is_a_clear_failure(self):
        with open(os.path.join(self.firefox, "cert9.db"), "wb") as f:
            f.write(b"this is not an sqlite database")
        r = self.trust("install", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stdout, r"FAILED: Firefox profile abcd\.default-release")
        self.assertEqual(len(self.nicks(self.chromium)), 1)  # the others still done

    @unittest.skipUnless(os.geteuid() == 0, "the system store needs root")
    def test_system_store_as_root(self):
        """As root (CI is), install reaches the system bundle and uninstall
        takes it out again; runs in a finally so the machine is left clean."""
        bundle = "/etc/ssl/certs/ca-certificates.crt"
        try:
            r = subprocess.run([harness.AGENT, "trust", "install", "--state-dir", self.state],
                               env=self.env, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(os.path.join(self.state, "ca.crt")) as f:
                ca = f.read().strip()
            with open(bundle) as f:
                self.assertIn(ca, f.read())
            code, st = self.status()
            self.assertEqual(code, 0, st)
            self.assertTrue([s for s in st["stores"] if s["kind"] == "system"][0]["current_ca"])
        finally:
            r = subprocess.run([harness.AGENT, "trust", "uninstall", "--state-dir", self.state],
                               env=self.env, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual([f for f in os.listdir("/usr/local/share/ca-certificates")
                          if f.startswith("ukey-agent-")], [])
        with open(bundle) as f:
            self.assertNotIn(ca, f.read())
        # No dangling links to the removed file are left in /etc/ssl/certs.
        self.assertEqual([f for f in os.listdir("/etc/ssl/certs") if f.startswith("ukey-agent-")], [])

    def test_bad_action(self):
        r = self.trust("frobnicate", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown action", r.stderr)


if __name__ == "__main__":
    harness.main()
