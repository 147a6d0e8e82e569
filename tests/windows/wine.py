"""Runs the Windows build (UKEY_WIN_BUILD, made by scripts/build-windows)
under Wine, headless, for tests/windows/ and the Windows unit tests.

Each run gets a Wine prefix of its own, copied from one base prefix that is
made once per build (about 14 s): Wine creates sockets in the prefix's
wineserver, so a test in its own network namespace needs a wineserver of its
own, which a fresh prefix gives. Programs are started in their own session
and stopped by PID, SIGINT first (Wine turns it into CTRL_C_EVENT, the
agent's graceful stop; SIGTERM would kill it outright); `wineserver -k`
ends what is left in the prefix.

PC/SC: Debian 12's Wine 8.0 has a stub winscard.dll. scripts/build-windows
builds Wine 10's pcsc-lite bridge as wscardpx (tests/windows/build-winscard)
into UKEY_WIN_BUILD/wine/; a program that needs it runs from an application
directory holding the forwarding winscard.dll beside its .exe.

As a command: `wine.py run PROGRAM.exe [ARGS...]` runs one program (a unit
test) in a fresh prefix and exits with its code; environment variables
UKEY_SOURCE_DIR and UKEY_SOFTSKF are given to it as Windows paths.
"""
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from agent import _die_with_parent  # noqa: E402

WINE = "/usr/lib/wine/wine64"
WINESERVER = "/usr/lib/wine/wineserver64"


def build_dir():
    d = os.environ.get("UKEY_WIN_BUILD")
    if not d or not os.path.isfile(os.path.join(d, "ukey-agent.exe")):
        raise RuntimeError("UKEY_WIN_BUILD must name the Windows build (scripts/build-windows): %r" % d)
    return d


def winpath(path):
    """The Windows name of a Unix path: Wine maps / to drive Z:."""
    return "Z:" + os.path.abspath(path).replace("/", "\\")


def _base_prefix():
    """The base prefix of this build (made once, under a lock: ctest runs
    tests two at a time), reporting Windows 10."""
    base = os.path.join(build_dir(), "wine", "base-prefix")
    with open(os.path.join(build_dir(), "wine", "base-prefix.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isfile(os.path.join(base, ".complete")):
            shutil.rmtree(base, ignore_errors=True)
            env = dict(os.environ, WINEPREFIX=base, WINEDEBUG="-all", WINEDLLOVERRIDES="mscoree,mshtml=")
            env.pop("DISPLAY", None)
            for cmd in ([WINE, "wineboot", "-i"], [WINE, "winecfg", "/v", "win10"]):
                subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=180, check=True)
            subprocess.run([WINESERVER, "-w"], env=env, timeout=120, check=True)
            open(os.path.join(base, ".complete"), "w").close()
    return base


class Wine:
    """A private prefix (and application directory) for one test."""

    def __init__(self):
        base = _base_prefix()
        # Beside the base prefix, on its file system: hard links for its
        # 700 MB of builtin DLLs; the registry files, which Wine rewrites,
        # as copies of their own.
        runs = os.path.join(build_dir(), "wine", "runs")
        os.makedirs(runs, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="run-", dir=runs)
        self.prefix = os.path.join(self.tmp, "prefix")
        subprocess.run(["cp", "-al", base, self.prefix], check=True)
        for name in os.listdir(self.prefix):
            if name.endswith(".reg"):
                p = os.path.join(self.prefix, name)
                with open(p, "rb") as f:
                    data = f.read()
                os.unlink(p)
                with open(p, "wb") as f:
                    f.write(data)
        tools = os.path.join(build_dir(), "wine")
        self.dllpath = os.path.join(tools, "dllpath")
        shutil.copy(os.path.join(self.dllpath, "x86_64-windows", "wscardpx.dll"),
                    os.path.join(self.prefix, "drive_c", "windows", "system32", "wscardpx.dll"))
        self.app = os.path.join(self.tmp, "app")
        os.makedirs(self.app)
        shutil.copy(os.path.join(tools, "winscard.dll"), self.app)
        self.env = dict(os.environ, WINEPREFIX=self.prefix, WINEDEBUG="-all", WINEDLLPATH=self.dllpath,
                        WINEDLLOVERRIDES="mscoree,mshtml=;winscard=n,b")
        self.env.pop("DISPLAY", None)
        self.env.pop("WAYLAND_DISPLAY", None)

    def install(self, *names):
        """Copies programs or DLLs of the Windows build into the
        application directory; returns the path of the first."""
        paths = []
        for name in names:
            shutil.copy(os.path.join(build_dir(), name), self.app)
            paths.append(os.path.join(self.app, name))
        return paths[0] if paths else None

    def command(self, program, *args):
        return [WINE, program] + [str(a) for a in args]

    def run(self, program, *args, timeout=120, env=None, input=None):
        """Runs a Windows program to its end; CompletedProcess with text."""
        e = dict(self.env, **(env or {}))
        return subprocess.run(self.command(program, *args), env=e, input=input, capture_output=True,
                              text=True, errors="replace", timeout=timeout, start_new_session=True,
                              preexec_fn=_die_with_parent, stdin=None if input is not None else subprocess.DEVNULL)

    def popen(self, program, *args, env=None, **kw):
        e = dict(self.env, **(env or {}))
        return subprocess.Popen(self.command(program, *args), env=e, start_new_session=True,
                                preexec_fn=_die_with_parent, **kw)

    def reg_query(self, key, value=None):
        """`reg query` in this prefix: the output, or None when the key
        (or value) is not there."""
        args = ["reg", "query", key] + (["/v", value] if value else [])
        r = self.run(*args, timeout=60)
        return r.stdout if r.returncode == 0 else None

    def cleanup(self):
        subprocess.run([WINESERVER, "-k"], env=self.env, capture_output=True, timeout=60)
        # wineserver -k returns before the server has gone.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _server_running(self.prefix):
            time.sleep(0.1)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _server_running(prefix):
    """Whether a wineserver serves `prefix` (its socket directory is keyed
    by the prefix's device and inode)."""
    try:
        st = os.stat(prefix)
    except FileNotFoundError:
        return False
    d = "/tmp/.wine-%d/server-%x-%x" % (os.getuid(), st.st_dev, st.st_ino)
    return os.path.exists(os.path.join(d, "socket"))


def main():
    if len(sys.argv) < 3 or sys.argv[1] != "run":
        sys.exit("usage: wine.py run PROGRAM.exe [ARGS...]")
    program = sys.argv[2]
    wine = Wine()
    try:
        exe = wine.install(os.path.relpath(program, build_dir())) if os.path.dirname(
            os.path.abspath(program)) == os.path.abspath(build_dir()) else program
        env = {k: winpath(os.environ[k]) for k in ("UKEY_SOURCE_DIR", "UKEY_SOFTSKF", "UKEY_P11MOCK")
               if os.environ.get(k)}
        env.setdefault("UKEY_SOFTSKF", winpath(os.path.join(build_dir(), "softskf.dll")))
        env.setdefault("UKEY_P11MOCK", winpath(os.path.join(build_dir(), "p11mock.dll")))
        r = subprocess.run(wine.command(exe, *sys.argv[3:]), env=dict(wine.env, **env),
                           stdin=subprocess.DEVNULL, timeout=280, start_new_session=True,
                           preexec_fn=_die_with_parent)
        sys.exit(r.returncode)
    finally:
        wine.cleanup()


if __name__ == "__main__":
    main()
