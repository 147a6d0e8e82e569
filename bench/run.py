"""ukey-agent benchmarks (issue 2): status throughput and latency over TLS
keep-alive with wrk, each row beside nginx serving the same answer as a
static file with the same certificate (issue 19), new TLS handshakes per
second with openssl s_time, resident memory idle and under load, and time
from exec to the first answered request. Everything runs on loopback against
a private agent with a temporary state directory and a private nginx; every
process started here is stopped by PID.
"""
import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
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


def rss_by_library(pid):
    """Resident KiB of `pid` per mapped file's base name, of anonymous
    memory (heap, stacks, mmap'd buffers) under "", and what no other
    process shares under "private": where an RSS goes."""
    kib, name = {}, ""
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                path = head[5] if len(head) > 5 else ""
                name = os.path.basename(path) if path.startswith("/") else ""
            elif head and head[0] == "Rss:":
                kib[name] = kib.get(name, 0) + int(head[1])
    with open("/proc/%d/smaps_rollup" % pid) as f:
        kib["private"] = sum(int(line.split()[1]) for line in f if line.startswith(("Private_Clean:", "Private_Dirty:")))
    return kib


# Where issue 19 began: `openssl s_time -new` made ~20 full handshakes a second
# of wall time (Nagle held each flight's later records for the client's
# delayed ACK; commit 36a83b6).
HANDSHAKES_BEFORE = 20
WARM_STARTS = 5


def goals(results, beside, warm_s, idle_kib, by_lib, wakeups_no_pcscd, hs, facts):
    """Issue 19's goals beside what this run measured, met or not; README.md
    ("Where the cost stays") says why for those that are not."""
    def row(goal, measured, met, why=""):
        return "| %s | %s | %s |" % (goal, measured, "met" if met else "not met" + (": " + why if why else ""))
    ratio = {c: results[c][0] / beside[c][0] for c in (16, 64)}
    p99 = {c: results[c][2] / beside[c][2] for c in (16, 64)}
    libs = sorted(((k, v) for k, v in by_lib.items() if k and k != "private"), key=lambda kv: -kv[1])
    lib_kib = sum(v for _, v in libs)
    rows = [
        row("`status` ≥ 1.0× nginx's requests/s at 16 and 64 connections", "%.2f× / %.2f×" % (ratio[16], ratio[64]),
            min(ratio.values()) >= 1.0, "the hop to libmicrohttpd and its thread's work"),
        row("`status` p99 ≤ 1.5× nginx's", "%.2f× / %.2f×" % (p99[16], p99[64]), max(p99.values()) <= 1.5,
            "queueing behind the same hop"),
        row("exec → first answer ≤ 20 ms", "%.0f ms" % (warm_s * 1000), warm_s <= 0.020,
            "the machine's exec and page faults"),
        row("idle RSS ≤ 5 MiB", "%.1f MiB: %.1f MiB in mapped libraries (%s), %.1f MiB anonymous; "
            "%.1f MiB of it private (not shared with other processes)"
            % (idle_kib / 1024, lib_kib / 1024, ", ".join("%s %.1f" % (k, v / 1024) for k, v in libs[:5]),
               by_lib.get("", 0) / 1024, by_lib.get("private", 0) / 1024), idle_kib <= 5 * 1024,
            "the libraries' pages"),
        row("0 wake-ups a minute idle, with pcscd and a card", "%.1f (no pcscd: %.1f)"
            % (facts["idle_wakeups_pcscd"], wakeups_no_pcscd), facts["idle_wakeups_pcscd"] < 0.5,
            "which thread woke: README.md, idle wake-ups"),
        row("new handshakes/s ≥ 2× before (%d/s)" % HANDSHAKES_BEFORE, "%.0f /s" % hs, hs >= 2 * HANDSHAKES_BEFORE),
        row("warm PIV login ≤ 3 card commands + logout", "%.1f APDUs with logout" % facts["login_apdus_piv"],
            facts["login_apdus_piv"] <= 4.0, "SELECT and the PIN counter stay"),
        row("a token listing reads nothing a hotplug event has not invalidated",
            "%.1f APDUs per `GET /api/v1/tokens`" % facts["listing_apdus"], facts["listing_apdus"] == 0,
            "the PIN counter changes with no hotplug event"),
    ]
    return "\n".join(["| goal | this run | |", "|---|---|---|"] + rows)


def start_agent(agent, state, port, ctx=None):
    """Starts the agent; returns (process, seconds from exec to first 200).
    `ctx`, the client's TLS context, is best made before (once the CA is
    there): then the clock counts the agent's time, not the client's."""
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
    """Runs wrk; returns (requests/s, p50 ms, p99 ms, peak RSS KiB of `pid` during the run)."""
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


NGINX = "/usr/sbin/nginx"

# The agent's TLS: 1.2 with its suites in its order (mbedTLS 2.28 picks by
# the server's preference), so that both ends do the same record work.
NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {dir}/server.crt;
        ssl_certificate_key {dir}/server.key;
        ssl_protocols TLSv1.2;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
        ssl_prefer_server_ciphers on;
        location = /api/v1/status {{
            alias {dir}/status.json;
            default_type "{content_type}";
{headers}
        }}
    }}
}}
"""


def agent_status(port, ca):
    """The agent's answer to GET /api/v1/status: (body, its own headers)."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=ca), timeout=30)
    conn.request("GET", "/api/v1/status", headers={"Host": "127.0.0.1:%d" % port})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return body, resp.getheaders()


def start_nginx(tmp, state, body, headers):
    """nginx with 1 worker on a loopback port, serving `body` as a static file
    at /api/v1/status with the agent's headers and a copy of its certificate
    and key; returns (process, port, worker PID)."""
    d = os.path.join(tmp, "nginx")
    os.mkdir(d)
    # The worker (user nobody when started by root) reads the file.
    os.chmod(tmp, 0o711)
    os.chmod(d, 0o755)
    for name in ("server.crt", "server.key"):
        shutil.copy(os.path.join(state, name), os.path.join(d, name))
    with open(os.path.join(d, "status.json"), "wb") as f:
        f.write(body)
    os.chmod(os.path.join(d, "status.json"), 0o644)
    own = {"date", "content-length", "connection", "content-type", "server", "keep-alive"}
    content_type = dict((k.lower(), v) for k, v in headers).get("content-type", "application/json")
    port = free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(dir=d, port=port, content_type=content_type, headers="\n".join(
            '            add_header %s "%s" always;' % (k, v) for k, v in headers if k.lower() not in own)))
    proc = subprocess.Popen([NGINX, "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "error.log")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30:
        if proc.poll() is not None:
            raise RuntimeError("nginx did not start: " + proc.stderr.read().decode(errors="replace"))
        try:
            with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
                workers = f.read().split()
            if workers:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                return proc, port, int(workers[0])
        except OSError:
            pass
        time.sleep(0.01)
    stop(proc)
    raise RuntimeError("nginx did not listen within 30 s")


def requests(port, ca, count, clients=4):
    """`count` GET /api/v1/status over `clients` keep-alive TLS connections."""
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
    nginx = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]
    return "%s, %d cores, Linux %s, mbedTLS %s, nginx %s, %s" % (cpu, os.cpu_count(), platform.release(), mbed,
                                                                nginx, pcscd)


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
        # Cold start: creates the CA and leaf; warm starts reuse them: their
        # median (one start varies: 15 to 44 ms on a virtual machine), the
        # last of them kept running for the rows below.
        port = free_port()
        proc, cold = start_agent(args.agent, state, port)
        stop(proc)
        ctx = ssl.create_default_context(cafile=os.path.join(state, "ca.crt"))
        starts = []
        for _ in range(WARM_STARTS):
            if starts:
                stop(proc)
            port = free_port()
            proc, t = start_agent(args.agent, state, port, ctx)
            starts.append(t)
        warm = statistics.median(starts)
        try:
            time.sleep(1)
            idle = rss_kib(proc.pid)
            by_lib = rss_by_library(proc.pid)
            wakeups = idle_wakeups(proc.pid, args.idle_seconds)
            requests(port, os.path.join(state, "ca.crt"), 10000)
            after_10k = rss_kib(proc.pid)
            body, headers = agent_status(port, os.path.join(state, "ca.crt"))
            nginx, nginx_port, nginx_worker = start_nginx(tmp, state, body, headers)
            try:
                # Side by side, one connection count after the other.
                results, beside = {}, {}
                for c in (1, 16, 64):
                    results[c] = wrk(port, c, args.seconds, proc.pid)
                    beside[c] = wrk(nginx_port, c, args.seconds, nginx_worker)
            finally:
                stop(nginx)
            hs = handshakes(port, os.path.join(state, "ca.crt"), args.seconds)
            hs_reuse = handshakes(port, os.path.join(state, "ca.crt"), args.seconds, "-reuse")
            after = rss_kib(proc.pid)
        finally:
            stop(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    for c, (rps, p50, p99, peak) in results.items():
        n_rps, n_p50, n_p99, n_peak = beside[c]
        conns = "%d connection%s" % (c, "" if c == 1 else "s")
        rows.append("| `GET /api/v1/status`, TLS keep-alive, %s | %.0f req/s (%.2f× nginx) | p50 %.2f ms, p99 %.2f ms "
                    "(p99 %.2f× nginx's) | peak RSS %.1f MiB |"
                    % (conns, rps, rps / n_rps, p50, p99, p99 / n_p99, peak / 1024))
        rows.append("| nginx, 1 worker, the same JSON as a static file, %s | %.0f req/s | p50 %.2f ms, p99 %.2f ms "
                    "| worker's peak RSS %.1f MiB |" % (conns, n_rps, n_p50, n_p99, n_peak / 1024))
    rows.append("| new TLS handshakes (openssl s_time -new, 1 client) | %.0f /s | | |" % hs)
    rows.append("| resumed TLS handshakes (openssl s_time -reuse, 1 client, session ticket) | %.0f /s | | |" % hs_reuse)
    rows.append("| RSS idle / after 10,000 requests / after all the load | %.1f MiB / %.1f MiB / %.1f MiB | | |"
                % (idle / 1024, after_10k / 1024, after / 1024))
    rows.append("| wake-ups of the idle agent, no pcscd on the machine (context switches of all its threads, %d s) "
                "| %.1f per minute | | |" % (args.idle_seconds, wakeups))
    rows.append("| exec to first answered request: first run (makes CA + leaf) / later runs (median of %d) "
                "| %.0f ms / %.0f ms | | |" % (WARM_STARTS, cold * 1000, warm * 1000))
    table = "\n".join(["| what | result | latency | memory |", "|---|---|---|---|"] + rows)
    facts_path = os.path.join(tempfile.mkdtemp(prefix="ukey-bench-facts-"), "facts.json")
    tokens = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tokens.py"),
                             "--agent", args.agent, "--idle-seconds", str(args.idle_seconds), "--facts", facts_path],
                            capture_output=True, text=True, timeout=600)
    if tokens.returncode != 0:
        sys.exit("bench/tokens.py failed:\n" + tokens.stdout + tokens.stderr)
    with open(facts_path) as f:
        facts = json.load(f)
    shutil.rmtree(os.path.dirname(facts_path), ignore_errors=True)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report = ("Measured %s on %s; wrk %d s per row.\n\n%s\n\n## Card work: listing and login\n\n%s"
              "\n## Issue 19's goals\n\nWhy those not met stay: README.md, \"Where the cost stays\".\n\n%s\n"
              % (stamp, machine(), args.seconds, table, tokens.stdout,
                 goals(results, beside, warm, idle, by_lib, wakeups, hs, facts)))
    print(report)
    if args.record:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
        with open(path, "w") as f:
            f.write("# Benchmark results\n\nProduced by `bench/run --record` (see README.md here for "
                    "what each row measures).\n\n" + report)


if __name__ == "__main__":
    main()
