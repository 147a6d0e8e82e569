"""Makes the OCSP answers that tests/unit/test_ocsp.c and the fuzz_ocsp
corpus use, with the real `openssl ocsp` responder (file mode, no network),
and the issuer's CRL (DER and PEM, listing `revoked`) as fuzz_crl's seeds.
Run from the source tree: /usr/bin/python3 tests/data/ocsp/make.py
The certificates last ten years; the answers' nextUpdate too."""
import os
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "integration"))
import pki  # noqa: E402


def run(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def main():
    work = tempfile.mkdtemp(prefix="ukey-ocsp-data-")
    try:
        p = pki.Pki(work, "http://127.0.0.1:1", "http://127.0.0.1:2", days=3650).p
        for name in ("inter", "valid", "revoked", "unknown"):
            shutil.copy(p(name + ".pem"), os.path.join(here, name + ".pem"))
        seeds = os.path.join(here, "..", "..", "fuzz", "corpus", "crl")
        os.makedirs(seeds, exist_ok=True)
        shutil.copy(p("inter.crl"), os.path.join(seeds, "lists-revoked.der"))
        shutil.copy(p("inter.crl.pem"), os.path.join(seeds, "lists-revoked.pem"))
        answers = {  # file: (certificate, signer, nonce)
            "good-nonce": ("valid", "responder", True),
            "good": ("valid", "responder", False),
            "revoked": ("revoked", "responder", False),
            "unknown": ("unknown", "responder", False),
            "issuer-signed": ("valid", "inter", False),
            "rogue-signed": ("valid", "valid", False),
        }
        for out, (cert, signer, nonce) in answers.items():
            req = os.path.join(here if nonce else work, out + ".req")
            run("openssl", "ocsp", "-issuer", p("inter.pem"), "-cert", p(cert + ".pem"), "-reqout", req,
                *([] if nonce else ["-no_nonce"]))
            run("openssl", "ocsp", "-index", p("index.txt"), "-CA", p("inter.pem"), "-rsigner", p(signer + ".pem"),
                "-rkey", p(signer + ".key"), "-ndays", "3650", "-reqin", req,
                "-respout", os.path.join(here, out + ".der"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
