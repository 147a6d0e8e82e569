"""Test harness: starts a real ukey-agent on an ephemeral loopback port with a
temporary state directory, talks to it over TLS that trusts only the agent's
own CA, and stops it by PID. Standard library only (Debian's /usr/bin/python3).
"""
import argparse
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

AGENT = None  # path to build/ukey-agent, set by main()


def terminate(proc, timeout=10, sig=signal.SIGTERM):
    """`sig` (SIGTERM), then SIGKILL after `timeout`; waits for the process
    either way."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _die_with_parent():
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Agent:
    """One agent process. Use as a context manager or call start()/stop()."""

    def __init__(self, args=(), config=None, state_dir=None, env=None, wrapper=(), stop_timeout=15,
                 pin_retry_delay_ms=0):
        self.tmp = tempfile.mkdtemp(prefix="ukey-it-")
        self.state_dir = state_dir or os.path.join(self.tmp, "state")
        self.args = list(args)
        self.wrapper = list(wrapper)   # e.g. valgrind and its options
        self.stop_timeout = stop_timeout
        self.config_path = None
        # The pause after a wrong PIN is off unless a test asks for it (the
        # pacing tests do); a config given as text is used as it is.
        if config is None or isinstance(config, dict):
            config = dict(config or {})
            config["limits"] = dict(config.get("limits", {}), pin_retry_delay_ms=pin_retry_delay_ms)
        if config is not None:
            self.config_path = os.path.join(self.tmp, "agent.json")
            with open(self.config_path, "w") as f:
                f.write(config if isinstance(config, str) else json.dumps(config))
        self.env = dict(os.environ, HOME=self.tmp, XDG_CONFIG_HOME=os.path.join(self.tmp, "config"))
        self.env.pop("XDG_DATA_HOME", None)
        # No desktop notifications on the machine's session from a test's
        # expiring certificates: tests that want a bus give its address.
        self.env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        self.env.pop("XDG_RUNTIME_DIR", None)
        if env:
            self.env.update(env)
        self.proc = None
        self.port = None
        self.probe_port = None
        self.log = []
        self._log_lock = threading.Lock()

    @property
    def ca(self):
        return os.path.join(self.state_dir, "ca.crt")

    def command(self):
        cmd = self.wrapper + [AGENT, "serve", "--port", "0", "--probe-port", "0", "--state-dir", self.state_dir,
                              "--log-level", "debug"]
        if self.config_path:
            cmd += ["--config", self.config_path]
        return cmd + self.args

    def start(self, timeout=30):
        # Its own process group, and SIGKILL if this test process dies first
        # (a ctest timeout), so no agent outlives its test.
        self.proc = subprocess.Popen(self.command(), env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        ready = threading.Event()

        def drain():
            for line in self.proc.stderr:
                with self._log_lock:
                    self.log.append(line)
                m = re.search(r"probe listening on http://127\.0\.0\.1:(\d+)", line)
                if m:
                    self.probe_port = int(m.group(1))
                m = re.search(r"listening on https://127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()
            self.proc.stderr.close()

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        if not ready.wait(timeout) or self.port is None:
            self.stop()
            raise RuntimeError("agent did not start:\n" + self.log_text())
        return self

    def log_text(self):
        with self._log_lock:
            return "".join(self.log)

    def log_count(self, pattern):
        """How many log lines match the regular expression `pattern`."""
        with self._log_lock:
            return sum(re.search(pattern, line.rstrip("\n")) is not None for line in self.log)

    def wait_log(self, pattern, count, timeout=20):
        """Waits until `count` log lines match `pattern`; True if they do."""
        deadline = time.monotonic() + timeout
        while self.log_count(pattern) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.log_count(pattern) >= count

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    stop_signal = signal.SIGTERM

    def stop(self, timeout=None):
        """stop_signal (SIGTERM), then SIGKILL after `timeout` (the agent's
        stop_timeout); returns the exit code."""
        if self.proc is None:
            return None
        terminate(self.proc, timeout or self.stop_timeout, self.stop_signal)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything it may have started
        except ProcessLookupError:
            pass
        self._drain.join(10)  # read the last log lines; EOF once the group is gone
        return self.proc.returncode

    def cleanup(self):
        """Stops the agent and removes its files. Fails if it did not exit
        cleanly or a sanitizer reported anything (ASan/UBSan/LSan builds)."""
        rc = self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        log = self.log_text()
        if re.search(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:", log):
            raise AssertionError("sanitizer report from the agent:\n" + log[-6000:])
        if rc not in (None, 0):
            raise AssertionError("agent exited with %s:\n%s" % (rc, log[-3000:]))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # --- clients -------------------------------------------------------
    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.ca)  # trusts only the agent's CA
        return ctx

    def connect(self, host="127.0.0.1", timeout=10):
        return http.client.HTTPSConnection(host, self.port, context=self.ssl_context(), timeout=timeout)

    def request(self, method, path, headers=None, body=None, host_header=None, conn=None, timeout=10):
        """Sends one request with exactly the given headers (Host included
        unless host_header is False). Returns (status, headers, body bytes)."""
        own = conn is None
        conn = conn or self.connect(timeout=timeout)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            if host_header is not False:
                conn.putheader("Host", host_header or "127.0.0.1:%d" % self.port)
            for k, v in (headers.items() if isinstance(headers, dict) else (headers or [])):
                conn.putheader(k, v)
            data = body.encode() if isinstance(body, str) else body
            if data is not None:
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data)
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            if own:
                conn.close()

    def get_json(self, path, headers=None):
        status, hdrs, body = self.request("GET", path, headers)
        return status, hdrs, json.loads(body)


def run_tool(*cmd, check=True, input=None, timeout=60, env=None):
    """Runs a command (no shell) and returns CompletedProcess with text output."""
    return subprocess.run(list(cmd), input=input, capture_output=True, text=True,
                          timeout=timeout, check=check, env=env)


def main():
    global AGENT
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", required=True)
    args, rest = parser.parse_known_args()
    AGENT = os.path.abspath(args.agent)
    unittest.main(module="__main__", argv=[sys.argv[0]] + rest, verbosity=2)
