"""Card work, measured against OpenSC on the same virtual card in the same
run: token listing (issue 3: `ukey-agent tokens` vs `pkcs15-tool
--list-certificates`, and a cached `GET /api/v1/tokens`), and a login
(issue 4: `POST /api/v1/login` vs `pkcs11-tool --login --sign`), each with
wall time and APDUs. Runs in its own mount namespace with a private pcscd (the test
fixtures in tests/integration/pcsc.py); every process is stopped by PID."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
from idle import idle_wakeups  # noqa: E402

OPENSC_PKCS11 = (__import__("glob").glob("/usr/lib/*/opensc-pkcs11.so") or ["opensc-pkcs11.so"])[0]


def apdus(card, since):
    return sum(1 for l in card.apdu_log()[since:] if l.startswith("APDU"))


def measure(card, runs, cmd, env=None):
    """Mean wall time and APDUs of running `cmd` `runs` times."""
    n = len(card.apdu_log())
    t0 = time.perf_counter()
    for _ in range(runs):
        subprocess.run(cmd, capture_output=True, check=True, env=env)
    return (time.perf_counter() - t0) / runs, apdus(card, n) / runs


def p11_sign(d, key_id):
    """pkcs11-tool's PIN + ES256 signature with OpenSC's module."""
    data = os.path.join(d, "data.bin")
    with open(data, "wb") as f:
        f.write(os.urandom(64))
    return ["pkcs11-tool", "--module", OPENSC_PKCS11, "--login", "--pin", "123456", "--sign", "-m", "ECDSA-SHA256",
            "--id", key_id, "-i", data, "-o", os.path.join(d, "sig.bin")]


def insert_and_wait(agent, pcscd, state, kind):
    """Inserts a virtual card and waits until the agent lists its token (of type `kind`)."""
    card = pcsc.VirtualCard(pcscd, state).insert()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
            t["type"] == kind for t in agent.get_json("/api/v1/tokens")[2].get("tokens", [])):
        time.sleep(0.05)
    return card


# The fewest commands a login can spend, per driver, and why (issue 19). A
# SELECT is never skipped: PC/SC does not tell when another program selected
# another application between two transactions (see agent/token/token.h).
MINIMUM = [
    ("PIV", "SELECT, VERIFY (empty: the PIN's counter, for the last-attempt guard), VERIFY, GENERAL AUTHENTICATE "
            "+ logout (VERIFY FF): 4 + logout; the first right PIN of an insertion reads the counter it leaves once more"),
    ("OpenPGP", "SELECT, GET DATA C4 (PW1's counter), VERIFY 82, INTERNAL AUTHENTICATE + logout (VERIFY FF 82): "
                "4 + logout, same rule"),
    ("PKCS#11", "no APDUs of its own: C_GetTokenInfo (PIN flags), C_Login, C_FindObjects (the key), C_SignInit, "
                "C_Sign + C_Logout; the card commands are the module's (OpenSC's: its PIV row)"),
    ("SKF", "no APDUs of its own: SKF_GetPINInfo, SKF_VerifyPIN, the signature call + SKF_ClearSecureState; the "
            "card commands are the vendor library's"),
]


def measure_login(agent, card, runs):
    """Mean wall time and APDUs of a login through a keep-alive connection."""
    import base64
    import json
    body = json.dumps({"challenge": base64.b64encode(os.urandom(32)).decode(), "pin": "123456"})
    headers = {"Content-Type": "application/json", "Origin": "https://127.0.0.1:%d" % agent.port}
    conn = agent.connect()
    status = agent.request("POST", "/api/v1/login", headers, body=body, conn=conn)[0]
    if status != 200:
        raise RuntimeError("login failed: %d %s" % (status, agent.request("POST", "/api/v1/login", headers, body=body)))
    n = len(card.apdu_log())
    t0 = time.perf_counter()
    for _ in range(runs):
        agent.request("POST", "/api/v1/login", headers, body=body, conn=conn)
    elapsed = (time.perf_counter() - t0) / runs
    conn.close()
    return elapsed, apdus(card, n) / runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--idle-seconds", type=int, default=60)
    ap.add_argument("--facts", help="also write the figures bench/run.py checks against issue 19's goals "
                                    "to this file (JSON)")
    args = ap.parse_args()
    harness.AGENT = os.path.abspath(args.agent)
    pcscd = pcsc.Pcscd().start()
    d = tempfile.mkdtemp(prefix="ukey-bench-tokens-")
    pki = pcsc.make_pki(d)
    state = os.path.join(d, "card.json")
    pcsc.write_card_state(state, pki)
    agent = harness.Agent().start()
    card = None
    rows = []
    try:
        # Inserted while the agent runs: its hotplug monitor reads the card once.
        card = insert_and_wait(agent, pcscd, state, "PIV")
        insert_apdus = apdus(card, 0)
        conn = agent.connect()
        agent.request("GET", "/api/v1/tokens", conn=conn)
        n = len(card.apdu_log())
        t0 = time.perf_counter()
        for _ in range(args.runs):
            agent.request("GET", "/api/v1/tokens", conn=conn)
        warm = (time.perf_counter() - t0) / args.runs
        warm_apdus = apdus(card, n) / args.runs
        conn.close()
        cold, cold_apdus = measure(card, args.runs, [harness.AGENT, "tokens", "--json"])
        opensc, opensc_apdus = measure(card, args.runs, ["pkcs15-tool", "--list-certificates"])
        rows.append("| `ukey-agent tokens --json` (fresh process: reads CHUID, certificates, PIN state) | %.1f ms | %.1f APDUs |"
                    % (cold * 1000, cold_apdus))
        rows.append("| `pkcs15-tool --list-certificates` (OpenSC, fresh process) | %.1f ms | %.1f APDUs |"
                    % (opensc * 1000, opensc_apdus))
        rows.append("| `GET /api/v1/tokens` on a running agent (cached; PIN state read fresh) | %.1f ms | %.1f APDUs |"
                    % (warm * 1000, warm_apdus))
        rows.append("| the agent's read of a newly inserted card (hotplug monitor, once) | | %d APDUs |"
                    % insert_apdus)
        login, login_apdus = measure_login(agent, card, args.runs)
        p11, p11_apdus = measure(card, args.runs, p11_sign(d, "01"))
        rows.append("| login: `POST /api/v1/login` (ES256, warm: SELECT, PIN counter, VERIFY, sign, logout; then reset) | %.1f ms | %.1f APDUs |"
                    % (login * 1000, login_apdus))
        rows.append("| the same PIN + signature with `pkcs11-tool --login --sign` (OpenSC, fresh process) | %.1f ms | %.1f APDUs |"
                    % (p11 * 1000, p11_apdus))
        logins = {"PIV": (login_apdus, p11_apdus)}
        time.sleep(2)
        before = len(card.apdu_log())
        wakeups = idle_wakeups(agent.proc.pid, args.idle_seconds)
        facts = {"listing_apdus": warm_apdus, "login_apdus_piv": login_apdus, "idle_wakeups_pcscd": wakeups}
        rows.append("| wake-ups of the idle agent with pcscd and the card in (context switches of all its threads, "
                    "%d s) | %.1f per minute | %d APDUs |" % (args.idle_seconds, wakeups, apdus(card, before)))
        # The same login on the virtual OpenPGP card (its AUT key), against
        # OpenSC's openpgp driver.
        card.remove()
        card = None
        pgp_state = os.path.join(d, "openpgp.json")
        pcsc.write_openpgp_state(pgp_state, pki, fingerprints={"aut": "01" * 20})  # an AUT key is there
        card = insert_and_wait(agent, pcscd, pgp_state, "OpenPGP")
        pgp_apdus = measure_login(agent, card, args.runs)[1]
        try:
            pgp_opensc = measure(card, args.runs, p11_sign(d, "03"), env=dict(os.environ, OPENSC_DRIVER="openpgp"))[1]
        except subprocess.CalledProcessError:
            pgp_opensc = "pkcs11-tool failed"
        logins["OpenPGP"] = (pgp_apdus, pgp_opensc)
    finally:
        if card:
            card.remove()
        agent.cleanup()
        pcscd.cleanup()
        shutil.rmtree(d, ignore_errors=True)
    if args.facts:
        with open(args.facts, "w") as f:
            json.dump(facts, f)
    print("Virtual PIV card with 2 certificates, through pcscd and vpcd; mean of %d runs.\n" % args.runs)
    print("| what | time | card traffic |")
    print("|---|---|---|")
    print("\n".join(rows))
    print("\nCard commands per login, per driver (mean of %d warm logins; OpenSC: `pkcs11-tool --login --sign`, "
          "a fresh process).\n" % args.runs)
    print("| driver | the agent | OpenSC | the minimum |")
    print("|---|---|---|---|")
    for name, why in MINIMUM:
        agent_n, opensc_n = logins.get(name, ("—", "—"))
        print("| %s | %s | %s | %s |" % (name, agent_n if isinstance(agent_n, str) else "%.1f APDUs" % agent_n,
                                         opensc_n if isinstance(opensc_n, str) else "%.1f APDUs" % opensc_n, why))


if __name__ == "__main__":
    main()
