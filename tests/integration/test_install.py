"""libukeyverify installs as a portal's build expects: `cmake --install`
into a temporary prefix, then a C program finds it with pkg-config, links
(static and shared) and verifies docs/PROTOCOL.md's ES256 token."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent as harness  # noqa: E402
from agent import run_tool  # noqa: E402
import test_protocol  # noqa: E402

PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include <ukey/verify.h>
int main(int argc, char **argv)
{
    struct ukey_verifier *v;
    struct ukey_verify_info info;
    ukey_verifier_create(&v);
    ukey_verifier_add_trust_anchors(v, argv[1]);
    ukey_verifier_set_time(v, 1800000000);
    ukey_verify_result r = ukey_verify_token(v, argv[2], strlen(argv[2]), argv[3], argv[4], &info);
    printf("%s %s\n", ukey_verify_name(r), info.subject);
    ukey_verifier_free(v);
    return r;
}
"""


class Install(unittest.TestCase):
    def test_pkg_config_static_and_shared(self):
        build = os.path.dirname(harness.AGENT)
        with tempfile.TemporaryDirectory() as prefix:
            run_tool("cmake", "--install", build, "--prefix", prefix)
            for f in ("include/ukey/verify.h", "bin/ukey-verify"):
                self.assertTrue(os.path.exists(os.path.join(prefix, f)), f)
            pc_dir = [os.path.join(r, "") for r, _, files in os.walk(prefix) if "ukeyverify.pc" in files][0]
            env = dict(os.environ, PKG_CONFIG_PATH=pc_dir)
            src = os.path.join(prefix, "check.c")
            with open(src, "w") as f:
                f.write(PROGRAM)
            vectors = test_protocol.read_doc_vectors()
            token = json.dumps(vectors["tokens"]["ES256"])
            args = [os.path.join(test_protocol.DATA, "ca.pem"), token, test_protocol.ORIGIN, vectors["challenge"]]
            libdir = os.path.dirname(pc_dir.rstrip("/"))
            cflags = run_tool("pkg-config", "--cflags", "ukeyverify", env=env).stdout.split()
            shared = run_tool("pkg-config", "--libs", "ukeyverify", env=env).stdout.split()
            # Static: the archive, with its dependencies linked as the system has them.
            static = [os.path.join(libdir, "libukeyverify.a")] + run_tool(
                "pkg-config", "--libs", "jansson", "libcurl").stdout.split() + ["-lmbedx509", "-lmbedcrypto"]
            # A sanitizer build's library needs the sanitizer runtime in the program too.
            with open(os.path.join(build, "CMakeCache.txt")) as f:
                sanitize = ["-fsanitize=address,undefined"] if "UKEY_SANITIZE:BOOL=ON" in f.read() else []
            for kind, libs in (("static", static), ("shared", shared)):
                exe = os.path.join(prefix, "check-" + kind)
                cc = run_tool("cc", *sanitize, "-o", exe, src, *cflags, *libs, check=False)
                self.assertEqual(cc.returncode, 0, cc.stderr)
                r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=30,
                                   env=dict(os.environ, LD_LIBRARY_PATH=libdir))
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertTrue(r.stdout.startswith("OK CN=测试用户 es256"), r.stdout)


if __name__ == "__main__":
    harness.main()
