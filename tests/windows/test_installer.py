"""The Windows installer (UKEY_WIN_BUILD/ukey-agent-setup.exe, NSIS) under
Wine, silent as an administrator's deployment runs it: it installs per user
into %LOCALAPPDATA%\\Programs\\ukey-agent, registers the log-on start (HKCU
Run), puts the agent's CA into the user's root store, starts the agent,
which then answers on its port with that CA; the uninstaller stops the
agent and takes all of it away again.

In a network namespace of its own: the installed agent listens on the
default port, 27443."""
import glob
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "integration")]
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import wine  # noqa: E402

PORT = 27443
RUN_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run"
UNINSTALL_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\ukey-agent"
ROOT_STORE = r"HKCU\Software\Microsoft\SystemCertificates\Root\Certificates"


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class Installer(unittest.TestCase):
    def setUp(self):
        self.wine = wine.Wine()
        self.setup = self.wine.install("ukey-agent-setup.exe")

    def tearDown(self):
        self.wine.cleanup()

    def wait(self, cond, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.2)
        return cond()

    def run_starting_agent(self, program, *args, timeout=180):
        """Runs a program that leaves the agent running, to its end. Every
        Wine process keeps the Unix stderr it was started with, the agent
        and the wineserver too: a pipe there would stay open, so the
        output goes to a file. Returns (exit code, output)."""
        with tempfile.TemporaryFile() as out:
            p = self.wine.popen(program, *args, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            rc = p.wait(timeout=timeout)
            out.seek(0)
            return rc, out.read().decode(errors="replace")

    def root_certs(self):
        out = self.wine.reg_query(ROOT_STORE) or ""
        sub = ROOT_STORE.split("\\", 1)[1].upper() + "\\"  # reg writes the hive out in full
        return [l.strip() for l in out.splitlines() if sub in l.upper()]

    def test_install_start_trust_and_uninstall(self):
        self.assertEqual(self.root_certs(), [])
        rc, out = self.run_starting_agent(self.setup, "/S")
        self.assertEqual(rc, 0, out)
        homes = glob.glob(os.path.join(self.wine.prefix, "drive_c", "users", "*", "AppData", "Local"))
        self.assertEqual(len(homes), 1, homes)
        local = homes[0]
        inst = os.path.join(local, "Programs", "ukey-agent")
        for name in ("ukey-agent.exe", "ukey-agentw.exe", "ukey-verify.exe", "uninstall.exe"):
            self.assertTrue(os.path.isfile(os.path.join(inst, name)), os.listdir(inst))
        run = self.wine.reg_query(RUN_KEY, "ukey-agent")
        self.assertIsNotNone(run)
        # The Windows-subsystem twin: no console window at log-on.
        self.assertIn(r'Programs\ukey-agent\ukey-agentw.exe" serve', run)
        self.assertIsNotNone(self.wine.reg_query(UNINSTALL_KEY, "UninstallString"))
        # The agent runs, serves with its CA, and that CA is in the user's root store.
        self.assertTrue(self.wait(lambda: listening(PORT)), "the installed agent does not listen on %d" % PORT)
        ca = os.path.join(local, "ukey-agent", "ca.crt")
        self.assertTrue(os.path.isfile(ca))
        conn = http.client.HTTPSConnection("127.0.0.1", PORT, context=ssl.create_default_context(cafile=ca),
                                           timeout=20)
        conn.request("GET", "/api/v1/status")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        conn.close()
        self.assertEqual(len(self.root_certs()), 1, self.wine.reg_query(ROOT_STORE))

        # _?= runs the uninstaller in place, so that it is waited for.
        r = self.wine.run(os.path.join(inst, "uninstall.exe"), "/S", "_?=" + wine.winpath(inst), timeout=180)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(self.wait(lambda: not listening(PORT), 30), "the agent still listens after uninstall")
        self.assertIsNone(self.wine.reg_query(RUN_KEY, "ukey-agent"))
        self.assertIsNone(self.wine.reg_query(UNINSTALL_KEY))
        self.assertEqual(self.root_certs(), [])
        left = [n for n in os.listdir(inst) if n != "uninstall.exe"] if os.path.isdir(inst) else []
        self.assertEqual(left, [])


if __name__ == "__main__":
    unittest.main()
