"""libukeyverify installs as a portal's build expects: `cmake --install`
into a temporary prefix, then a C program finds it with pkg-config, links
(static and shared) and verifies docs/PROTOCOL.md's ES256 token."""
import json
import os
import re
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
    def test_user_service_and_deb(self):
        build = os.path.dirname(harness.AGENT)
        with tempfile.TemporaryDirectory() as out:
            run_tool("cpack", "-G", "DEB", "--config", os.path.join(build, "CPackConfig.cmake"), "-B", out,
                     timeout=300)
            deb = [os.path.join(out, f) for f in os.listdir(out) if f.endswith(".deb")][0]
            files = run_tool("dpkg-deb", "-c", deb).stdout
            with open(os.path.join(build, "CMakeCache.txt")) as f:
                cache = dict(re.findall(r"^(\w+):\w+=(.*)$", f.read(), re.M))
            prefix = cache["CMAKE_INSTALL_PREFIX"]
            for path in ("bin/ukey-agent", "bin/ukey-verify", "lib/systemd/user/ukey-agent.service",
                         "share/ukey-agent/certs/README.md", "share/doc/ukey-agent/INTEGRATION.md",
                         "share/doc/ukey-agent/examples/profiles/demo.json", "share/doc/ukey-agent/PROFILES.md"):
                self.assertIn("." + prefix + "/" + path, files, path)
            info = run_tool("dpkg-deb", "-I", deb).stdout
            depends = re.search(r"^ Depends: (.*)$", info, re.M).group(1)
            for dep in ("libpcsclite1", "libmbedtls14", "libjansson4", "libcurl4", "libsystemd0"):
                self.assertIn(dep, depends)
            # scripts/test builds with the static libmicrohttpd of scripts/build-deps
            # (no HTTPS): no dependency on Debian's, no GnuTLS loaded, and the
            # package names the source version it embeds.
            if cache.get("UKEY_DEPS"):
                self.assertNotIn("libmicrohttpd", depends)
                self.assertNotIn("gnutls", run_tool("ldd", harness.AGENT).stdout)
                self.assertIn("." + prefix + "/share/doc/ukey-agent/built-using.txt", files)
                with open(os.path.join(cache["UKEY_DEPS"], "VERSIONS")) as f:
                    self.assertRegex(f.read(), r"^libmicrohttpd 0\.9\.\d+-\S+$")
            else:
                self.assertIn("libmicrohttpd12", depends)
            # The maintainer scripts need no network: they only enable the user unit.
            control = os.path.join(out, "control")
            run_tool("dpkg-deb", "-e", deb, control)
            with open(os.path.join(control, "postinst")) as f:
                postinst = f.read()
            self.assertIn("systemctl --global enable ukey-agent.service", postinst)
            for tool in ("curl", "wget", "apt", "npm", "pip", "http"):
                self.assertNotIn(tool, postinst)
            # The unit: restart on failure, hardening, and systemd finds nothing wrong with it.
            root = os.path.join(out, "root")
            run_tool("dpkg-deb", "-x", deb, root)
            with open(os.path.join(root, prefix.lstrip("/"), "lib/systemd/user/ukey-agent.service")) as f:
                unit = f.read()
            self.assertIn("ExecStart=%s/bin/ukey-agent serve" % prefix, unit)
            for line in ("Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                         "LimitCORE=0", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "WantedBy=default.target"):
                self.assertIn(line, unit)
            runtime = os.path.join(out, "runtime")
            os.mkdir(runtime, 0o700)
            local = os.path.join(runtime, "ukey-agent.service")
            with open(local, "w") as f:
                f.write(unit.replace("%s/bin/ukey-agent" % prefix, harness.AGENT))
            r = run_tool("systemd-analyze", "verify", "--user", local, env=dict(os.environ, XDG_RUNTIME_DIR=runtime),
                         check=False)
            self.assertEqual((r.returncode, r.stderr.strip()), (0, ""), r.stderr)

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
            # Static: the archive, with its dependencies linked as the system has them;
            # not libcurl, which fetches load when they first run (x509/fetch.c).
            static = [os.path.join(libdir, "libukeyverify.a")] + run_tool(
                "pkg-config", "--libs", "jansson", "libcrypto").stdout.split() + ["-lmbedcrypto"]
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
