"""A two-level test PKI made with the openssl CLI for the certificate
checks (issue 5), and the servers that publish it on loopback:

- root CA -> intermediate CA -> user certificates (valid, expired,
  not yet valid, revoked, expiring in 10 days, unknown to the responder)
  and a delegated OCSP responder certificate (id-kp-OCSPSigning);
- every user certificate names the intermediate's CRL (distribution
  point), the OCSP responder and the intermediate's certificate (AIA);
- PkiServer serves files and can answer 404, stall, send garbage, a
  truncated file or 100 MB for any path;
- OcspResponder runs the real `openssl ocsp` responder on loopback.
Every process is started by PID and stopped by the test.
"""
import http.server
import os
import socket
import subprocess
import threading
import time

from agent import run_tool, terminate, _die_with_parent


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PkiServer:
    """HTTP on 127.0.0.1 over `directory`; `modes[path]` overrides a path:
    404, "stall" (sends nothing for a minute), "garbage" (an HTML page),
    "truncate" (the first half of the file), "huge" (100 MB)."""

    def __init__(self, directory):
        self.modes = {}
        self.hits = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                mode = server.modes.get(path)
                local = os.path.join(directory, os.path.basename(path))
                try:
                    if mode == "stall":
                        time.sleep(60)
                        return
                    if mode == 404 or (mode is None and not os.path.isfile(local)):
                        self.send_error(404)
                        return
                    if mode == "garbage":
                        body = b"<html><body>Service temporarily unavailable</body></html>"
                    elif mode == "huge":
                        self.send_response(200)
                        self.send_header("Content-Length", str(100 * 1024 * 1024))
                        self.end_headers()
                        chunk = b"\x30" * 65536
                        for _ in range(1600):
                            self.wfile.write(chunk)
                        return
                    else:
                        with open(local, "rb") as f:
                            body = f.read()
                        if mode == "truncate":
                            body = body[:len(body) // 2]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


USERS = ("valid", "expired", "future", "revoked", "soon", "ocsp_revoked", "unknown")


class Pki:
    """The PKI in directory `d`, published at `base_url` (a PkiServer over
    `d`) with the OCSP responder at `ocsp_url`."""

    def __init__(self, d, base_url, ocsp_url, days=365):
        self.d = d
        self.base_url = base_url
        self.ocsp_url = ocsp_url
        p = self.p
        with open(p("ext.cnf"), "w") as f:
            f.write(
                "[root]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier=hash\n"
                "[inter]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
                "[user]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
                "crlDistributionPoints=URI:%s/inter.crl\n"
                "authorityInfoAccess=OCSP;URI:%s,caIssuers;URI:%s/inter.der\n"
                "[responder]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=OCSPSigning\n" % (base_url, ocsp_url, base_url))
        with open(p("ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca=inter\n[inter]\ndatabase=%s\nnew_certs_dir=%s\ncertificate=%s\n"
                    "private_key=%s\nserial=%s\ncrlnumber=%s\ndefault_md=sha256\ndefault_days=%d\n"
                    "default_crl_days=7\npolicy=any\nunique_subject=no\ncopy_extensions=none\n"
                    "[any]\ncommonName=supplied\n"
                    % (p("index.txt"), d, p("inter.pem"), p("inter.key"), p("serial"), p("crlnumber"), days))
        for name, content in (("index.txt", ""), ("serial", "1000\n"), ("crlnumber", "01\n")):
            with open(p(name), "w") as f:
                f.write(content)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        run_tool("openssl", "req", "-x509", *ec, "-keyout", p("root.key"), "-out", p("root.pem"), "-days", "3650",
                 "-subj", "/CN=ukey test root/O=ukey-agent tests", "-extensions", "root", "-config", p("ext.cnf"))
        run_tool("openssl", "req", "-new", *ec, "-keyout", p("inter.key"), "-out", p("inter.csr"),
                 "-subj", "/CN=ukey test intermediate/O=ukey-agent tests")
        run_tool("openssl", "x509", "-req", "-in", p("inter.csr"), "-CA", p("root.pem"), "-CAkey", p("root.key"),
                 "-CAcreateserial", "-days", "3000", "-out", p("inter.pem"), "-extfile", p("ext.cnf"),
                 "-extensions", "inter")
        run_tool("openssl", "x509", "-in", p("inter.pem"), "-outform", "DER", "-out", p("inter.der"))
        dates = {"expired": ("20200101000000Z", "20210101000000Z"),
                 "future": (time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + 30 * 86400)),
                            time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + 400 * 86400))),
                 "soon": (time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() - 86400)),
                          time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + 10 * 86400)))}
        for name in USERS + ("responder",):
            self.issue(name, "responder" if name == "responder" else "user", *dates.get(name, (None, None)))
        # "unknown" was issued, then dropped from the responder's database.
        with open(p("index.txt")) as f:
            lines = [l for l in f if "/CN=unknown" not in l]
        with open(p("index.txt"), "w") as f:
            f.writelines(lines)
        self.ca("-revoke", p("revoked.pem"))
        self.crl("inter.crl")
        # Revoked after the published CRL was made: only OCSP knows.
        self.ca("-revoke", p("ocsp_revoked.pem"))

    def p(self, name):
        return os.path.join(self.d, name)

    def ca(self, *args):
        run_tool("openssl", "ca", "-batch", "-config", self.p("ca.cnf"), *args)

    def issue(self, name, ext, start=None, end=None):
        p = self.p
        run_tool("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", p(name + ".key"), "-out", p(name + ".csr"), "-subj", "/CN=%s" % name)
        dates = ["-startdate", start, "-enddate", end] if start else []
        self.ca("-in", p(name + ".csr"), "-out", p(name + ".pem"), "-notext", "-extfile", p("ext.cnf"),
                "-extensions", ext, *dates)

    def crl(self, out, faketime=None):
        """A CRL of the current database as DER in `out` (made `faketime` ago)."""
        pem = self.p(out + ".pem")
        pre = ["faketime", "-f", faketime] if faketime else []
        run_tool(*pre, "openssl", "ca", "-batch", "-config", self.p("ca.cnf"), "-gencrl", "-out", pem)
        run_tool("openssl", "crl", "-in", pem, "-outform", "DER", "-out", self.p(out))

    def pem(self, name):
        with open(self.p(name + ".pem")) as f:
            return f.read()


class OcspResponder:
    """`openssl ocsp` answering for the intermediate of `pki`, signed by the
    delegated responder (or by the intermediate itself). OpenSSL 3.0 binds
    it to every address: tests that use it run in a network namespace of
    their own (pcsc.in_private_namespace())."""

    def __init__(self, pki, port, delegated=True, signer=None, files=None, sigopts=()):
        """`files` (index, ca, rsigner, rkey) answer for another CA than
        pki's intermediate; `sigopts` are -rsigopt values (an SM2 signer's
        distid)."""
        signer = signer or ("responder" if delegated else "inter")
        index, ca, rsigner, rkey = files or (pki.p("index.txt"), pki.p("inter.pem"), pki.p(signer + ".pem"),
                                             pki.p(signer + ".key"))
        # It serves one connection at a time: a connection made only to see
        # whether it listens would hold it up, so wait for its ACCEPT line.
        self.proc = subprocess.Popen(
            ["openssl", "ocsp", "-index", index, "-port", str(port), "-CA", ca, "-rsigner", rsigner, "-rkey", rkey,
             *[a for o in sigopts for a in ("-rsigopt", o)], "-nmin", "60", "-ignore_err", "-timeout", "5"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
            preexec_fn=_die_with_parent)
        line = self.proc.stdout.readline()
        if not line.startswith("ACCEPT"):
            terminate(self.proc)
            raise RuntimeError("openssl ocsp did not start: %r" % line)
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stop(self):
        terminate(self.proc)
        self.proc.stdout.close()


def free_port():
    return _free_port()


def raw_from_der(der, n=32):
    """DER ECDSA-Sig-Value / SM2Signature SEQUENCE {r, s} -> r||s, n bytes each."""
    assert der[0] == 0x30
    i = 3 if der[1] == 0x81 else 2
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        ln = der[i + 1]
        out += der[i + 2:i + 2 + ln].lstrip(b"\0").rjust(n, b"\0")
        i += 2 + ln
    return out
