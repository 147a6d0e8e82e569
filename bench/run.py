"""ukey-agent benchmarks (issue 2): status throughput and latency over TLS
keep-alive with wrk, new TLS handshakes per second with openssl s_time,
resident memory idle and under load, and time from exec to the first
answered request. Everything runs on loopback against a private agent with a
temporary state directory; every process started here is stopped by PID.
"""
import argparse
import os
import platform
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

from idle import idle_wakeups


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_agent(agent, state, port):
    """Starts the agent; returns (process, seconds from exec to first 200)."""
    ctx = None
    t0 = time.monotonic()
    proc = subprocess.Popen([agent, "serve", "--port", str(port), "--state-dir", state,
                             "--log-level", "warn"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while time.monotonic() - t0 < 30:
        try:
            if ctx is None and os.path.exists(os.path.join(state, "ca.crt")):
                ctx = ssl.create_default_context(cafile=os.path.join(state, "ca.crt"))
            if ctx is not None:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
                    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                        s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                  b"Connection: close\r\n\r\n" % port)
                        if s.recv(12).startswith(b"HTTP/1.1 200"):
                            return proc, time.monotonic() - t0
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.002)
    proc.kill()
    raise RuntimeError("agent did not answer within 30 s")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wrk(port, conns, seconds, pid):
    """Runs wrk; returns (requests/s, p50 ms, p99 ms, peak RSS KiB during the run)."""
    peak = [rss_kib(pid)]
    done = threading.Event()

    def sample():
        while not done.wait(0.1):
            peak[0] = max(peak[0], rss_kib(pid))

    threading.Thread(target=sample, daemon=True).start()
    out = subprocess.run(["wrk", "-t", str(min(2, conns)), "-c", str(conns), "-d", "%ds" % seconds,
                          "--latency", "https://127.0.0.1:%d/api/v1/status" % port],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    done.set()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label):
        value, unit = re.search(r"\s%s\s+([\d.]+)(us|ms|s)\b" % label, out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors or "Socket errors" in out:
        print(out, file=sys.stderr)
    return rps, ms("50%"), ms("99%"), peak[0]


def requests(port, ca, count, clients=4):
    """`count` GET /api/v1/status over `clients` keep-alive TLS connections."""
    import http.client
    ctx = ssl.create_default_context(cafile=ca)

    def one(n):
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
        for _ in range(n):
            conn.request("GET", "/api/v1/status", headers={"Host": "127.0.0.1:%d" % port})
            conn.getresponse().read()
        conn.close()
    threads = [threading.Thread(target=one, args=(count // clients,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def handshakes(port, ca, seconds, how="-new"):
    """Handshakes per second of wall time: `-new` full ones, `-reuse`
    resuming one session. (s_time's own "connections/user sec" divides by
    the client's CPU time, which says nothing of the server.)"""
    t0 = time.monotonic()
    out = subprocess.run(["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, how,
                          "-time", str(seconds), "-CAfile", ca],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    elapsed = time.monotonic() - t0
    return int(re.search(r"(\d+) connections in \d+ real seconds", out).group(1)) / elapsed


def machine():
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mbed = "?"
    try:
        with open("/usr/include/mbedtls/version.h") as f:
            mbed = re.search(r'MBEDTLS_VERSION_STRING\s+"([^"]+)"', f.read()).group(1)
    except OSError:
        pass
    pcscd = "pcscd running" if os.path.exists("/run/pcscd/pcscd.comm") else "no pcscd (status answers SCARD_E_NO_SERVICE)"
    return "%s, %d cores, Linux %s, mbedTLS %s, %s" % (cpu, os.cpu_count(), platform.release(), mbed, pcscd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--idle-seconds", type=int, default=60, help="how long the idle wake-ups are counted")
    ap.add_argument("--record", action="store_true", help="write bench/RESULTS.md")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="ukey-bench-")
    state = os.path.join(tmp, "state")
    rows = []
    try:
        # Cold start: creates the CA and leaf; warm start: reuses them.
        port = free_port()
        proc, cold = start_agent(args.agent, state, port)
        stop(proc)
        port = free_port()
        proc, warm = start_agent(args.agent, state, port)
        try:
            time.sleep(1)
            idle = rss_kib(proc.pid)
            wakeups = idle_wakeups(proc.pid, args.idle_seconds)
            requests(port, os.path.join(state, "ca.crt"), 10000)
            after_10k = rss_kib(proc.pid)
            results = {c: wrk(port, c, args.seconds, proc.pid) for c in (1, 16, 64)}
            hs = handshakes(port, os.path.join(state, "ca.crt"), args.seconds)
            hs_reuse = handshakes(port, os.path.join(state, "ca.crt"), args.seconds, "-reuse")
            after = rss_kib(proc.pid)
        finally:
            stop(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    for c, (rps, p50, p99, peak) in results.items():
        rows.append("| `GET /api/v1/status`, TLS keep-alive, %d connection%s | %.0f req/s | p50 %.2f ms, p99 %.2f ms | peak RSS %.1f MiB |"
                    % (c, "" if c == 1 else "s", rps, p50, p99, peak / 1024))
    rows.append("| new TLS handshakes (openssl s_time -new, 1 client) | %.0f /s | | |" % hs)
    rows.append("| resumed TLS handshakes (openssl s_time -reuse, 1 client, session ticket) | %.0f /s | | |" % hs_reuse)
    rows.append("| RSS idle / after 10,000 requests / after all the load | %.1f MiB / %.1f MiB / %.1f MiB | | |"
                % (idle / 1024, after_10k / 1024, after / 1024))
    rows.append("| wake-ups of the idle agent, no pcscd on the machine (context switches of all its threads, %d s) "
                "| %.1f per minute | | |" % (args.idle_seconds, wakeups))
    rows.append("| exec to first answered request: first run (makes CA + leaf) / later runs | %.0f ms / %.0f ms | | |"
                % (cold * 1000, warm * 1000))
    table = "\n".join(["| what | result | latency | memory |", "|---|---|---|---|"] + rows)
    tokens = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tokens.py"),
                             "--agent", args.agent], capture_output=True, text=True, timeout=600)
    if tokens.returncode != 0:
        sys.exit("bench/tokens.py failed:\n" + tokens.stdout + tokens.stderr)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report = ("Measured %s on %s; wrk %d s per row.\n\n%s\n\n## Card work: listing and login\n\n%s"
              % (stamp, machine(), args.seconds, table, tokens.stdout))
    print(report)
    if args.record:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
        with open(path, "w") as f:
            f.write("# Benchmark results\n\nProduced by `bench/run --record` (see README.md here for "
                    "what each row measures).\n\n" + report)


if __name__ == "__main__":
    main()
