"""Only the OS user the agent runs as may connect (issue 17, finding 2,
red team 2 W2): a client process of another uid is closed at once on the
HTTPS port (before any TLS byte) and on the probe port, with one log line
naming its uid; the agent's own user is served on 127.0.0.1 and [::1];
root is another user too. Needs root (to run processes as other uids)."""
import os
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent as harness  # noqa: E402

OTHER_UID = 12345
REFUSED = r"refused a connection to the %s port from uid %d: the agent serves only its own user \(uid %d\)"

# Run as another uid: connects, says what the agent did. "closed" when the
# agent hung up without sending a byte; "answered" with the first bytes.
CLIENT = r"""
import socket, ssl, sys
family, host, port, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET6 if family == "6" else socket.AF_INET)
s.settimeout(10)
s.connect((host, port))
try:
    if kind == "raw":          # nothing sent: does the agent close at once?
        data = s.recv(100)
    elif kind == "tls":        # a real handshake and a request
        ctx = ssl.create_default_context(cafile=sys.argv[5])
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
        s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % port)
        data = s.recv(100)
    else:                      # the probe's plain HTTP
        s.sendall(b"GET /probe HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % port)
        data = s.recv(100)
except (ConnectionResetError, ssl.SSLError, OSError) as e:
    print("closed", type(e).__name__)
    sys.exit(0)
print("answered" if data else "closed", data[:40])
"""


def as_uid(uid, *args):
    """Runs CLIENT as `uid` (gid the same, no supplementary groups); its verdict line."""
    def drop():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    r = subprocess.run([sys.executable, "-c", CLIENT] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=30, preexec_fn=drop if uid != os.geteuid() else None)
    return r.stdout.strip() or r.stderr.strip()


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@unittest.skipUnless(os.geteuid() == 0, "needs root to run clients as other users")
class OwnUserOnly(unittest.TestCase):
    def test_another_user_is_refused_on_both_ports_before_tls(self):
        with harness.Agent() as agent:
            ca = agent.ca
            # The agent's own user (root here) is served on both ports, v4 and v6.
            self.assertTrue(as_uid(0, "4", "127.0.0.1", agent.port, "tls", ca).startswith("answered b'HTTP/1.1 200"))
            self.assertTrue(as_uid(0, "4", "127.0.0.1", agent.probe_port, "probe").startswith(
                "answered b'HTTP/1.1 200"))
            if has_ipv6_loopback():
                self.assertTrue(as_uid(0, "6", "::1", agent.port, "tls", ca).startswith("answered b'HTTP/1.1 200"))
            self.assertEqual(agent.log_count("refused a connection"), 0)

            # Another uid: closed at once, before any TLS byte, and logged with its uid.
            self.assertTrue(as_uid(OTHER_UID, "4", "127.0.0.1", agent.port, "raw").startswith("closed"))
            self.assertTrue(agent.wait_log(REFUSED % ("HTTPS", OTHER_UID, 0), 1), agent.log_text())
            # A full client of that uid gets no answer either (the CA is public).
            with open(ca) as f:
                pem = f.read()
            public_ca = os.path.join("/tmp", "ukey-peer-ca-%d.pem" % os.getpid())
            with open(public_ca, "w") as f:
                f.write(pem)
            try:
                self.assertTrue(as_uid(OTHER_UID, "4", "127.0.0.1", agent.port, "tls", public_ca).startswith("closed"))
                if has_ipv6_loopback():
                    self.assertTrue(as_uid(OTHER_UID, "6", "::1", agent.port, "tls", public_ca).startswith("closed"))
            finally:
                os.unlink(public_ca)
            self.assertTrue(as_uid(OTHER_UID, "4", "127.0.0.1", agent.probe_port, "probe").startswith("closed"))
            # Rate-limited: one line for the first refusal, the others counted later.
            self.assertEqual(agent.log_count("refused a connection"), 1, agent.log_text())
            # The agent's own user is still served.
            status, _, _ = agent.request("GET", "/api/v1/status")
            self.assertEqual(status, 200)

    def test_the_probe_logs_its_refusal(self):
        with harness.Agent() as agent:
            self.assertTrue(as_uid(OTHER_UID, "4", "127.0.0.1", agent.probe_port, "probe").startswith("closed"))
            self.assertTrue(agent.wait_log(REFUSED % ("probe", OTHER_UID, 0), 1), agent.log_text())

    def test_root_is_another_user_for_a_user_agent(self):
        """The agent run as an ordinary user: that user is served, root is refused."""
        agent = harness.Agent(wrapper=["setpriv", "--reuid", str(OTHER_UID), "--regid", str(OTHER_UID),
                                       "--clear-groups"])
        os.chown(agent.tmp, OTHER_UID, OTHER_UID)
        agent.start()
        try:
            self.assertTrue(as_uid(OTHER_UID, "4", "127.0.0.1", agent.port, "tls", agent.ca).startswith(
                "answered b'HTTP/1.1 200"))
            self.assertTrue(as_uid(0, "4", "127.0.0.1", agent.port, "raw").startswith("closed"))
            self.assertTrue(agent.wait_log(REFUSED % ("HTTPS", 0, OTHER_UID), 1), agent.log_text())
            self.assertTrue(as_uid(0, "4", "127.0.0.1", agent.probe_port, "probe").startswith("closed"))
        finally:
            agent.cleanup()


if __name__ == "__main__":
    harness.main()
