"""The TLS front under many, idle and hostile connections (issue 2
"Robustness", issue 8 "slowloris, header floods, thousands of idle
keep-alive connections, garbage floods"; security.md MEM-03). Bounded in
time; every socket is closed."""
import concurrent.futures
import os
import resource
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent as harness  # noqa: E402

HANDSHAKE_TIMEOUT = 2

# A flooder process: new silent connections to the port at the given rate
# for the given seconds, the last 400 kept open; prints how many it made.
FLOODER = r"""
import collections, socket, sys, time
port, seconds, rate = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
kept, made = collections.deque(), 0
start = time.monotonic()
while time.monotonic() - start < seconds:
    if made > rate * (time.monotonic() - start):
        time.sleep(0.001)
        continue
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect(("127.0.0.1", port))
        made += 1
    except OSError:
        s.close()
        continue
    kept.append(s)
    if len(kept) > 400:
        kept.popleft().close()
print(made)
"""


def hung_up(s, timeout):
    """True when the agent has closed the connection (EOF or reset) within `timeout`."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Robustness(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.agent = harness.Agent(config={"limits": {"idle_timeout_s": 10}}).start()

    @classmethod
    def tearDownClass(cls):
        cls.agent.cleanup()

    def status_ok(self, timeout=10, agent=None):
        agent = agent or self.agent
        conn = agent.connect(timeout=timeout)
        try:
            status, _, body = agent.request("GET", "/api/v1/status", conn=conn)
        finally:
            conn.close()
        return status == 200 and b"ukey-agent" in body

    def test_200_concurrent_tls_connections(self):
        """200 clients connect at once, each handshakes and asks; all get answers."""
        ctx = self.agent.ssl_context()
        port = self.agent.port

        def one(_):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                    s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                              b"Connection: close\r\n\r\n" % port)
                    data = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    return data.startswith(b"HTTP/1.1 200") and b"ukey-agent" in data

        with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
            results = list(pool.map(one, range(200)))
        self.assertEqual(results.count(True), 200)
        self.assertTrue(self.agent.alive())

    def test_stalled_handshakes_do_not_block_and_are_closed(self):
        # An agent of its own: its short handshake timeout would cut the
        # other tests' handshakes on a slow machine.
        agent = harness.Agent(config={"limits": {"handshake_timeout_s": HANDSHAKE_TIMEOUT}}).start()
        idle = []
        try:
            for _ in range(50):
                s = socket.create_connection(("127.0.0.1", agent.port), timeout=10)
                idle.append(s)
            # A half-sent ClientHello too: the record header promises more.
            half = socket.create_connection(("127.0.0.1", agent.port), timeout=10)
            half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            idle.append(half)
            start = time.monotonic()
            self.assertTrue(self.status_ok(timeout=5, agent=agent))
            self.assertLess(time.monotonic() - start, HANDSHAKE_TIMEOUT,
                            "a normal request waited for the stalled handshakes")
            time.sleep(HANDSHAKE_TIMEOUT + 1.5)
            self.assertEqual(sum(hung_up(s, 5) for s in idle), len(idle))
            self.assertTrue(self.status_ok(agent=agent))
        finally:
            for s in idle:
                s.close()
            agent.cleanup()

    def test_garbage_instead_of_client_hello(self):
        for i in range(30):
            with socket.create_connection(("127.0.0.1", self.agent.port), timeout=10) as s:
                s.settimeout(5)
                try:
                    s.sendall(os.urandom(64 + i * 97))
                    if i % 3 == 0:  # a plaintext request on the TLS port
                        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    while s.recv(4096):
                        pass
                except (ConnectionResetError, BrokenPipeError, socket.timeout):
                    pass  # the agent may hang up mid-way: that is the right answer
        self.assertTrue(self.agent.alive())
        self.assertTrue(self.status_ok())

    def test_garbage_after_handshake_and_slow_headers(self):
        ctx = self.agent.ssl_context()
        raw = socket.create_connection(("127.0.0.1", self.agent.port), timeout=10)
        slow = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        slow.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0")  # and then nothing
        try:
            self.assertTrue(self.status_ok(timeout=5))
            with socket.create_connection(("127.0.0.1", self.agent.port), timeout=10) as r2:
                with ctx.wrap_socket(r2, server_hostname="127.0.0.1") as s:
                    s.sendall(os.urandom(3000) + b"\r\n\r\n")
                    s.settimeout(5)
                    reply = s.recv(100)
                    self.assertTrue(reply == b"" or reply.startswith(b"HTTP/1.1 400"), reply)
        finally:
            slow.close()
        self.assertTrue(self.agent.alive())
        self.assertTrue(self.status_ok())

    def test_connection_cap_makes_room_for_a_fresh_client(self):
        """At max_connections the least active connection makes room: a held
        connection that did nothing is closed, the new client is served."""
        agent = harness.Agent(config={"limits": {"max_connections": 8, "handshake_timeout_s": 30}}).start()
        held = []
        try:
            for _ in range(8):
                held.append(socket.create_connection(("127.0.0.1", agent.port), timeout=5))
            time.sleep(0.3)
            status, _, _ = agent.request("GET", "/api/v1/status")
            self.assertEqual(status, 200)
            self.assertEqual(sum(hung_up(s, 2) for s in held), 1)  # the oldest, and only it
        finally:
            for s in held:
                s.close()
            agent.cleanup()

    def test_floods_of_idle_slow_and_hostile_connections(self):
        """Against a cap of 64 connections: 1500 connections that never
        handshake, 300 idle keep-alive connections, 150 slowloris clients
        dribbling their headers, header floods and garbage records after the
        handshake. Through each, a fresh client is answered."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
        agent = harness.Agent(config={"limits": {"max_connections": 64, "handshake_timeout_s": 10,
                                                 "idle_timeout_s": 60}}).start()
        ctx = agent.ssl_context()
        port = agent.port
        held = []

        def fresh_client_served():
            # Generous: the sanitizer build on two busy cores is slow, and
            # being served at all is what the floods try to prevent.
            status, _, body = agent.request("GET", "/api/v1/status", timeout=30)
            return status == 200 and b"ukey-agent" in body

        def tls(request=None):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                server_hostname="127.0.0.1")
            if request:
                s.sendall(request)
            return s

        try:
            for _ in range(1500):  # handshakes that never start
                held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            for _ in range(3):
                self.assertTrue(fresh_client_served())
            for _ in range(300):  # keep-alive connections, idle after one request
                try:
                    s = tls(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port)
                    s.recv(4096)
                    held.append(s)
                except (OSError, ssl.SSLError):
                    pass  # made room for a later one: that is the point
            self.assertTrue(fresh_client_served())

            slow = []
            for _ in range(150):  # slowloris: headers one byte at a time
                try:
                    slow.append(tls(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Slow: " % port))
                except (OSError, ssl.SSLError):
                    pass
            held.extend(slow)
            stop = threading.Event()

            def dribble():
                while not stop.is_set():
                    for s in slow:
                        try:
                            s.sendall(b"a")
                        except (OSError, ssl.SSLError):
                            pass
                    stop.wait(1)

            def header_flood():
                big = b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % port + \
                      b"".join(b"X-Flood-%d: %s\r\n" % (i, b"x" * 200) for i in range(400)) + b"\r\n"
                while not stop.is_set():
                    try:
                        with tls(big) as s:
                            s.recv(100)
                    except (OSError, ssl.SSLError):
                        pass

            def garbage_flood():
                while not stop.is_set():
                    try:
                        with tls() as s:
                            s.sendall(os.urandom(4096))
                            s.recv(100)
                    except (OSError, ssl.SSLError):
                        pass

            threads = [threading.Thread(target=f, daemon=True) for f in (dribble, header_flood, garbage_flood)]
            for t in threads:
                t.start()
            try:
                served = [fresh_client_served() for _ in range(10)]
            finally:
                stop.set()
                for t in threads:
                    t.join(15)
            self.assertEqual(served.count(True), 10, served)
            self.assertTrue(agent.alive())
        finally:
            for s in held:
                s.close()
            agent.cleanup()
    def test_real_client_served_through_a_flood_of_new_connections(self):
        """Red team 2, 7.13 (issue 17, W6): four processes open up to 10000
        silent connections a second (at least 4000) for 8 s (each keeps its last 400 open, far over
        the cap of 256) while a real client makes TLS requests on new
        connections, one every 0.1 s: every one is answered. Silent
        connections make room for each other, never for a handshake or a
        request under way; accepting is bounded per loop turn; the backlog
        holds a browser's SYN between turns."""
        seconds, procs, rate = 8, 4, 2500
        floods = [subprocess.Popen([sys.executable, "-c", FLOODER, str(self.agent.port), str(seconds), str(rate)],
                                   stdout=subprocess.PIPE, text=True) for _ in range(procs)]
        served = []
        try:
            time.sleep(1)  # the flood is under way
            end = time.monotonic() + seconds - 2
            while time.monotonic() < end:
                try:
                    served.append(self.status_ok(timeout=10))
                except (OSError, ssl.SSLError) as e:
                    served.append(repr(e))
                time.sleep(0.1)
        finally:
            made = sum(int(f.communicate(timeout=seconds + 30)[0] or 0) for f in floods)
        print("\nflood: %d connections in %d s (%d/s) by %d processes; real client: %d of %d answered"
              % (made, seconds, made // seconds, procs, served.count(True), len(served)), file=sys.stderr)
        # The flood is real when it overruns the cap (256) many times a
        # second. The review's machine made ~10000/s; four flooders on two
        # cores of a virtual machine with dear system calls make ~6000/s
        # while they share them with the agent: what the machine can, not
        # what the agent allows, sets this rate.
        self.assertGreaterEqual(made // seconds, 4000, "the flood was too weak to test anything")
        self.assertEqual([r for r in served if r is not True], [])
        self.assertGreater(len(served), 10)
        self.assertTrue(self.agent.alive())

if __name__ == "__main__":
    harness.main()
