"""Test fixtures for everything that needs a card: a private pcscd with a
vpcd reader, the virtual PIV card (build/ukey-vcard), and a test PKI made
with the openssl CLI.

pcscd always creates /run/pcscd/pcscd.comm, so tests run in their own mount
namespace (see in_private_namespace) with a tmpfs over /run/pcscd: the
machine's own pcscd, if any, is never touched. Every process is started in
its own session with PDEATHSIG and stopped by PID.
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import agent as harness
from agent import run_tool, terminate, _die_with_parent

VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
READER = "Virtual PCD 00 00"


def in_private_namespace():
    """Re-executes this test under `unshare` unless already there: a mount
    namespace of its own (a private /run/pcscd) and a network namespace with
    only loopback up, so that no other suite running at once can take the
    ports it picks (vpcd's, the CRL and OCSP servers'), and servers that
    cannot bind to 127.0.0.1 alone (`openssl ocsp`) are reachable from
    nowhere else."""
    if os.environ.get("UKEY_PRIVATE_MOUNT_NS") == "1":
        return
    env = dict(os.environ, UKEY_PRIVATE_MOUNT_NS="1")
    cmd = ["sh", "-c", 'ip link set lo up && exec "$0" "$@"', sys.executable] + sys.argv
    os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", "--net"] + cmd, env)


def free_port_pair():
    """A port p with p and p+1 free (vpcd declares two readers)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p >= 65535:
            continue
        try:
            with socket.socket() as s2:
                s2.bind(("0.0.0.0", p + 1))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port pair")


class Pcscd:
    """A private pcscd with the vpcd driver on `port` (readers 00 00 and 00
    01), named `name` ("Virtual PCD"), as a reader's driver names it."""

    def __init__(self, name="Virtual PCD"):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="ukey-pcscd-")
        self.conf = os.path.join(self.tmp, "reader.conf.d")  # pcscd reads every file in it
        os.mkdir(self.conf)
        self.port = None
        self.proc = None
        os.makedirs("/run/pcscd", exist_ok=True)
        run_tool("mount", "-t", "tmpfs", "tmpfs", "/run/pcscd")

    def start(self):
        """Starts pcscd; each start uses a fresh port pair for the vpcd
        driver, since the old one may linger in TIME_WAIT after a kill."""
        self.port = free_port_pair()
        with open(os.path.join(self.conf, "vpcd"), "w") as f:
            f.write('FRIENDLYNAME "%s"\nDEVICENAME /dev/null:0x%X\nLIBPATH %s\nCHANNELID 0x%X\n'
                    % (self.name, self.port, VPCD_DRIVER, self.port))
        self.log = open(os.path.join(self.tmp, "pcscd.log"), "a")
        # --info: its reader thread logs each card it sees come and go.
        self.proc = subprocess.Popen(["pcscd", "-f", "--info", "-c", self.conf], stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 20
        listening = False
        while time.monotonic() < deadline:
            # The vpcd driver listens once loaded; clients connect to
            # pcscd.comm, which pcscd makes after loading its drivers.
            if not listening:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    listening = True
                except OSError:
                    pass
            if listening and os.path.exists("/run/pcscd/pcscd.comm"):
                time.sleep(0.2)  # the probe connection's card has come and gone
                return self
            time.sleep(0.05)
        with open(os.path.join(self.tmp, "pcscd.log")) as f:
            raise RuntimeError("pcscd did not start:\n" + f.read()[-2000:])

    def removals(self):
        """How many cards pcscd's reader thread has seen go (all its runs)."""
        with open(os.path.join(self.tmp, "pcscd.log"), errors="replace") as f:
            return f.read().count("Card Removed From")

    def stop(self):
        if self.proc:
            terminate(self.proc)
            self.log.close()
        self.proc = None

    def kill(self):
        """Kills pcscd hard, as a crash would."""
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.proc = None
        for name in os.listdir("/run/pcscd"):
            os.unlink(os.path.join("/run/pcscd", name))

    def cleanup(self):
        self.stop()
        subprocess.run(["umount", "/run/pcscd"], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


class FakePcscd:
    """In place of a Pcscd (stopped or killed): a pcscd speaking enough of
    pcsc-lite's protocol 4.4 for contexts, reader lists and status changes.
    `readers(n)` gives the reader names for the n-th reader-state request on
    a connection (0, 1, ...; each context is a connection), all of them
    empty; None closes the connection instead of answering, as a pcscd
    crashing at that moment would (the client gets SCARD_F_COMM_ERROR).
    Anything else closes it too."""

    SOCKET = "/run/pcscd/pcscd.comm"
    # READER_STATE: name[128], eventCounter, readerState, readerSharing,
    # cardAtr[33] (+3), cardAtrLength, cardProtocol; 16 of them.
    STATE = "<128sIIi33s3xII"
    SCARD_ABSENT = 0x0002

    def __init__(self, readers):
        self.readers = readers
        self.contexts = 0  # the hContext numbers it gives
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.SOCKET)
        self.sock.listen(64)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def states(self, names):
        table = b"".join(struct.pack(self.STATE, name.encode(), 1, self.SCARD_ABSENT, 0, b"", 0, 0)
                         for name in names)
        return table + bytes(struct.calcsize(self.STATE) * (16 - len(names)))

    def session(self, conn):
        pack, asked = struct.pack, 0
        conn.settimeout(30)
        with conn:
            try:
                while True:
                    header = conn.recv(8, socket.MSG_WAITALL)
                    if len(header) < 8:
                        return
                    size, command = struct.unpack("<II", header)
                    body = conn.recv(size, socket.MSG_WAITALL) if size else b""
                    if command == 0x11:  # CMD_VERSION: int32 major, minor; uint32 rv
                        conn.sendall(pack("<iiI", 4, 4, 0))
                    elif command == 0x01:  # SCARD_ESTABLISH_CONTEXT: scope, hContext, rv
                        self.contexts += 1
                        conn.sendall(pack("<III", struct.unpack("<I", body[:4])[0], self.contexts, 0))
                    elif command == 0x02:  # SCARD_RELEASE_CONTEXT: hContext, rv
                        conn.sendall(pack("<II", struct.unpack("<I", body[:4])[0], 0))
                    elif command in (0x12, 0x13):  # CMD_GET_READERS_STATE, CMD_WAIT_READER_STATE_CHANGE
                        names = self.readers(asked)
                        asked += 1
                        if names is None:
                            return  # gone in the middle of the answer
                        conn.sendall(self.states(names))
                    elif command == 0x14:  # CMD_STOP_WAITING_READER_STATE_CHANGE: timeOut, rv
                        conn.sendall(pack("<II", 0, 0))
                    else:
                        return
            except OSError:
                return

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)
        os.unlink(self.SOCKET)


TEST_ID_NUMBER = "310101199001010000"


def make_pki(d, crl_url=None):
    """A test CA and user certificates: EC P-256 for 9A and EC P-384 for 9D
    (digitalSignature, clientAuth), RSA-2048 for 9C (digitalSignature,
    nonRepudiation, and an ID-card number extension 1.2.156.112570.148). Returns {"ca": pem, slot: (cert, key)} and writes files in d."""
    def p(name):
        return os.path.join(d, name)
    cdp = "crlDistributionPoints=URI:%s\n" % crl_url if crl_url else ""
    with open(p("ext.cnf"), "w") as f:
        f.write("[auth]\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
                "basicConstraints=CA:FALSE\n" + cdp + "[sign]\nkeyUsage=critical,digitalSignature,nonRepudiation\n"
                "basicConstraints=CA:FALSE\n"
                # SHECA's ID-card number extension, as old clients showed it (a made-up number)
                "1.2.156.112570.148=ASN1:UTF8String:%s\n" % TEST_ID_NUMBER)
    run_tool("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "3650", "-subj", "/CN=ukey test CA/O=ukey-agent tests")
    for slot, alg, cn, ext in (("9a", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "张三", "auth"),
                               ("9c", ["-newkey", "rsa:2048"], "张三 signing", "sign"),
                               ("9d", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"], "张三 P-384", "auth")):
        run_tool("openssl", "req", "-new", *alg, "-nodes", "-keyout", p(slot + ".key"), "-out", p(slot + ".csr"),
                 "-subj", "/CN=%s/O=测试单位/C=CN" % cn, "-utf8")
        run_tool("openssl", "x509", "-req", "-in", p(slot + ".csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
                 "-CAcreateserial", "-days", "365", "-out", p(slot + ".pem"), "-extfile", p("ext.cnf"),
                 "-extensions", ext)
    def read(name):
        with open(p(name)) as f:
            return f.read()
    pki = {"ca": read("ca.pem")}
    for slot in ("9a", "9c", "9d"):
        pki[slot] = (read(slot + ".pem"), read(slot + ".key"))
    return pki


def issue_for_slot(d, pki, slot, days, cn="张三", start_days_ago=0):
    """A copy of make_pki(d)'s `pki` whose certificate in `slot` is a new one
    for the same key, valid for `days` from now, or from `start_days_ago`
    days ago (made under faketime; the same extensions)."""
    def p(name):
        return os.path.join(d, name)
    ext = "sign" if slot == "9c" else "auth"
    name = "%s-%dd-%d" % (slot, days, start_days_ago)
    clock = ["faketime", "-f", "-%dd" % start_days_ago] if start_days_ago else []
    run_tool("openssl", "req", "-new", "-key", p(slot + ".key"), "-out", p(name + ".csr"),
             "-subj", "/CN=%s/O=测试单位/C=CN" % cn, "-utf8")
    run_tool(*clock, "openssl", "x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
             "-CAcreateserial", "-days", str(days), "-out", p(name + ".pem"), "-extfile", p("ext.cnf"),
             "-extensions", ext)
    with open(p(name + ".pem")) as f:
        return dict(pki, **{slot: (f.read(), pki[slot][1])})


def make_crl(d, revoke=()):
    """A CRL from the test CA of make_pki(d) listing the certificates of the
    given slots; returns its path (PEM)."""
    def p(name):
        return os.path.join(d, name)
    with open(p("index.txt"), "w"):
        pass
    with open(p("ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca=test\n[test]\ndatabase=%s\ndefault_md=sha256\ndefault_crl_days=30\n"
                "crlnumber=%s\n" % (p("index.txt"), p("crlnumber")))
    with open(p("crlnumber"), "w") as f:
        f.write("01\n")
    for slot in revoke:
        run_tool("openssl", "ca", "-config", p("ca.cnf"), "-keyfile", p("ca.key"), "-cert", p("ca.pem"),
                 "-revoke", p(slot + ".pem"))
    run_tool("openssl", "ca", "-config", p("ca.cnf"), "-keyfile", p("ca.key"), "-cert", p("ca.pem"),
             "-gencrl", "-out", p("ca.crl"))
    return p("ca.crl")


class CrlServer:
    """Serves one directory over HTTP on 127.0.0.1 (the CRL distribution point)."""

    def __init__(self, directory):
        import functools
        import http.server
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass
        handler = functools.partial(Quiet, directory=directory)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def write_card_state(path, pki, pin="123456", puk="12345678", tries=3, guid="00112233445566778899aabbccddeeff",
                     slots=("9a", "9c"), puk_tries=3):
    state = {"pin": pin, "puk": puk, "pin_tries_max": 3, "pin_tries": tries, "puk_tries_max": 3,
             "puk_tries": puk_tries, "guid": guid,
             "slots": {slot: {"cert": pki[slot][0], "key": pki[slot][1]} for slot in slots}}
    with open(path, "w") as f:
        json.dump(state, f)


def write_openpgp_state(path, pki, aut="9a", pin="123456", reset_code="12345678", tries=3, serial="1234ABCD",
                        fingerprints=None):
    """An OpenPGP card (tests/vcard/README.md) whose authentication key is
    make_pki's key `aut`, with its certificate as the AUT cardholder
    certificate; `fingerprints` maps "sig"/"dec"/"aut" to 40 hex digits."""
    state = {"profile": "openpgp", "pin": pin, "puk": reset_code, "pin_tries_max": 3, "pin_tries": tries,
             "puk_tries_max": 3, "puk_tries": 3, "serial": serial,
             "slots": {"aut": {"cert": pki[aut][0], "key": pki[aut][1]}},
             "fingerprints": fingerprints or {}}
    with open(path, "w") as f:
        json.dump(state, f)


def read_card_state(path):
    with open(path) as f:
        return json.load(f)


class VirtualCard:
    """build/ukey-vcard connected to a Pcscd's first reader."""

    def __init__(self, pcscd, state, faults=()):
        self.binary = os.path.join(os.path.dirname(harness.AGENT), "ukey-vcard")
        self.pcscd = pcscd
        self.state = state
        self.faults = list(faults)
        self.log_path = state + ".apdu.log"
        self.proc = None
        self.removals = 0  # pcscd's count of cards gone when this one appeared

    def insert(self):
        cmd = [self.binary, "--state", self.state, "--host", "127.0.0.1", "--port", str(self.pcscd.port),
               "--log", self.log_path]
        for fault in self.faults:
            cmd += ["--fault", fault]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        # Generous: under load (test_load's hundred clients on two cores)
        # pcscd and vpcd take seconds to see a card.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            listed = run_tool("opensc-tool", "-l", check=False)
            if "Yes" in listed.stdout:
                self.removals = self.pcscd.removals()
                return self
            time.sleep(0.1)
        why = self.proc.stderr.read() if self.proc.poll() is not None else "still running"
        with open(os.path.join(self.pcscd.tmp, "pcscd.log"), errors="replace") as f:
            pcscd_log = [line for line in f.read().splitlines() if "IFDControl() Card not transacted" not in line]
        raise RuntimeError("the virtual card did not appear in the reader: %s\nopensc-tool -l: %s%s\n"
                           "the card's last lines: %s\npcscd's last lines:\n%s"
                           % (why, listed.stdout, listed.stderr, self.apdu_log()[-8:], "\n".join(pcscd_log[-25:])))

    def remove(self):
        """Pulls the card out and waits until pcscd's reader thread has seen
        it go (it polls vpcd every 0.4 s), so that the next insertion is a
        new card to it. The reader showing no card is not enough: a client's
        SCardDisconnect(RESET) or SCardReconnect that finds the card gone
        marks the reader empty at once, and a card connected to vpcd before
        the reader thread's next poll is then never powered or shown
        (pcsc-lite 1.9.9; test_load's slow card stayed unseen 30 s)."""
        if self.proc:
            terminate(self.proc)
            self.proc.stderr.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.pcscd.proc:
                if (self.pcscd.removals() > self.removals
                        and "Yes" not in run_tool("opensc-tool", "-l", check=False).stdout):
                    break
                time.sleep(0.1)
        self.proc = None

    def apdu_log(self):
        try:
            with open(self.log_path) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []


# The agent's log line once its hotplug monitor has read an inserted card.
INSERTED_LOG = r"debug: event token-inserted$"


class CardCase(unittest.TestCase):
    """A private pcscd, the test PKI and one agent for the class; a fresh
    virtual card for each test (its state in card-<test>.json). Subclasses
    set agent_args, agent_config, faults and pin_retry_delay_ms (the agent's
    pause after a wrong PIN; off unless set), and may override pki_options()
    (called with cls.dir made) and write_state(); token_id names the card's
    token for pin()."""
    agent_args = ()
    agent_config = None
    faults = ()
    pin_retry_delay_ms = 0
    token_id = None

    @classmethod
    def pki_options(cls):
        return {}

    @classmethod
    def setUpClass(cls):
        cls.pcscd = Pcscd().start()
        cls.dir = tempfile.mkdtemp(prefix="ukey-card-")
        cls.pki = make_pki(cls.dir, **cls.pki_options())
        cls.agent = harness.Agent(args=list(cls.agent_args), config=cls.agent_config,
                                  pin_retry_delay_ms=cls.pin_retry_delay_ms).start()

    @classmethod
    def tearDownClass(cls):
        cls.agent.cleanup()
        cls.pcscd.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def write_state(self, path):
        write_card_state(path, self.pki, slots=("9a", "9c", "9d"))

    def setUp(self):
        self.state = os.path.join(self.dir, "card-%s.json" % self.id().rsplit(".", 1)[1])
        self.write_state(self.state)
        self.card = self.insert()

    def insert(self):
        """Inserts the test's card and waits until the agent's hotplug
        monitor has read it (so that read does not overlap the test's
        requests); a monitor that misses it is the tests' to find."""
        seen = self.agent.log_count(INSERTED_LOG)
        card = VirtualCard(self.pcscd, self.state, self.faults).insert()
        self.agent.wait_log(INSERTED_LOG, seen + 1)
        return card

    def tearDown(self):
        self.card.remove()

    def tokens(self):
        status, _, body = self.agent.get_json("/api/v1/tokens")
        self.assertEqual(status, 200, body)
        return body

    def pin(self, action, body):
        status, _, raw = self.agent.request("POST", "/api/v1/tokens/%s/pin/%s" % (self.token_id, action),
                                            {"Content-Type": "application/json"}, body=json.dumps(body))
        return status, json.loads(raw)
