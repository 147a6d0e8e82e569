"""An SM2 (国密) test PKI made with the openssl CLI (OpenSSL 3.0), and the
state file of the soft SKF token (tests/skf/README.md) that carries it.

- SM2 root CA -> SM2 intermediate CA -> SM2 user certificates: a signing
  certificate (张三 at 上海测试企业, clientAuth), its encryption twin, and a
  revoked one listed on the intermediate's CRL (SM2-with-SM3);
- an RSA-2048 chain root -> intermediate -> user beside it, as a dual
  "RSA + SM2" token carries;
- with base_url, every user certificate names the intermediate's CRL
  (distribution point) and certificate (AIA caIssuers, DER), and the files
  sit in the directory under those names, ready for PkiServer (pki.py).

OpenSSL 3.0 signs and verifies SM2 with an EMPTY distinguishing ID unless
told otherwise (research sm2-skf-sof.md 3.1), so every SM2 signature here is
made with -sigopt distid:1234567812345678 and every CSR checked with
-vfyopt. check_sm2_pki() then checks the result independently.

Standard library only. Usable as a module (make_sm2_pki, write_skf_state,
edit_skf_state) or as a program:
    python3 sm2pki.py DIR [--state DIR/skf.json] [--base-url URL] [--no-check]
    python3 sm2pki.py --self-test
    python3 sm2pki.py --renew-crls DIR    (the CRLs of a PKI made earlier)
"""
import json
import os
import subprocess
import sys
import tempfile
import types

DISTID = "distid:1234567812345678"


def _run(*cmd, input=None):
    """Runs openssl (no shell); raises with its stderr on failure."""
    r = subprocess.run(list(cmd), input=input, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode,
                                                   r.stderr.decode(errors="replace")))
    return r.stdout


def make_sm2_pki(d, base_url=None, check=True, ocsp_url=None):
    """Makes the PKI in directory d (created if need be). Returns a namespace
    of absolute paths: root, inter, user, user_key, user_enc, user_enc_key,
    revoked, revoked_key, rsa_root, rsa_inter, rsa_user, rsa_user_key,
    crl (PEM), crl_der, rsa_crl (PEM), rsa_crl_der, chain (SM2 inter + root
    PEM), anchors (both roots, PEM), inter_der, rsa_inter_der, dir, index
    (the SM2 intermediate's `openssl ca` database: the users valid, the
    revoked one revoked, for an `openssl ocsp` responder). With ocsp_url, the
    SM2 user certificates name that OCSP responder (AIA)."""
    d = os.path.abspath(d)
    os.makedirs(d, exist_ok=True)

    def p(name):
        return os.path.join(d, name)

    def pub(kind):
        if not base_url:
            return ""
        ocsp = ",OCSP;URI:%s" % ocsp_url if ocsp_url and kind == "sm2" else ""
        return ("crlDistributionPoints=URI:%s/%s-inter.crl\nauthorityInfoAccess=caIssuers;URI:%s/%s-inter.crt%s\n"
                % (base_url, kind, base_url, kind, ocsp))

    user_common = "basicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    with open(p("ext.cnf"), "w") as f:
        f.write("[root]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier=hash\n"
                "[inter]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
                "[sm2_sign]\nkeyUsage=critical,digitalSignature,nonRepudiation\nextendedKeyUsage=clientAuth\n"
                + user_common + pub("sm2") +
                "[sm2_enc]\nkeyUsage=critical,keyEncipherment,dataEncipherment,keyAgreement\n"
                + user_common + pub("sm2") +
                "[rsa_sign]\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
                + user_common + pub("rsa"))

    sm2 = ["-sm3", "-sigopt", DISTID]

    def sm2_key(name):
        _run("openssl", "genpkey", "-algorithm", "SM2", "-out", p(name + ".key"))

    def rsa_key(name):
        _run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p(name + ".key"))

    def issue(name, ca, subj, ext, days, is_sm2):
        """CSR for name.key, signed by ca (ca.pem + ca.key) into name.pem."""
        _run("openssl", "req", "-new", "-key", p(name + ".key"), "-out", p(name + ".csr"), "-subj", subj, "-utf8",
             *(sm2 if is_sm2 else ["-sha256"]))
        if is_sm2:
            # The CSR's own SM2 signature was made with the ID: check it with it.
            _run("openssl", "req", "-in", p(name + ".csr"), "-verify", "-vfyopt", DISTID, "-noout")
        _run("openssl", "x509", "-req", "-in", p(name + ".csr"), "-CA", p(ca + ".pem"), "-CAkey", p(ca + ".key"),
             "-CAcreateserial", "-days", str(days), "-extfile", p("ext.cnf"), "-extensions", ext,
             "-out", p(name + ".pem"),
             *(sm2 + ["-vfyopt", DISTID] if is_sm2 else ["-sha256"]))

    # SM2 chain.
    for name in ("sm2-root", "sm2-inter", "sm2-user", "sm2-user-enc", "sm2-revoked"):
        sm2_key(name)
    _run("openssl", "req", "-new", "-x509", "-key", p("sm2-root.key"), "-out", p("sm2-root.pem"), "-days", "3650",
         "-subj", "/C=CN/O=ukey-agent tests/CN=ukey SM2 test root", "-utf8", "-config", p("ext.cnf"),
         "-extensions", "root", *sm2)
    issue("sm2-inter", "sm2-root", "/C=CN/O=ukey-agent tests/CN=ukey SM2 test intermediate", "inter", 3000, True)
    issue("sm2-user", "sm2-inter", "/C=CN/O=上海测试企业/CN=张三", "sm2_sign", 365, True)
    issue("sm2-user-enc", "sm2-inter", "/C=CN/O=上海测试企业/CN=张三", "sm2_enc", 365, True)
    issue("sm2-revoked", "sm2-inter", "/C=CN/O=上海测试企业/CN=李四", "sm2_sign", 365, True)

    # RSA chain.
    for name in ("rsa-root", "rsa-inter", "rsa-user"):
        rsa_key(name)
    _run("openssl", "req", "-new", "-x509", "-key", p("rsa-root.key"), "-out", p("rsa-root.pem"), "-days", "3650",
         "-subj", "/C=CN/O=ukey-agent tests/CN=ukey RSA test root", "-utf8", "-config", p("ext.cnf"),
         "-extensions", "root", "-sha256")
    issue("rsa-inter", "rsa-root", "/C=CN/O=ukey-agent tests/CN=ukey RSA test intermediate", "inter", 3000, False)
    issue("rsa-user", "rsa-inter", "/C=CN/O=上海测试企业/CN=张三", "rsa_sign", 365, False)

    # CRLs: `openssl ca` keeps the revocation database; the SM2 one is signed
    # with SM3 and the ID like every other SM2 signature here.
    for kind, md, extra, revoke in (("sm2", "sm3", ["-sigopt", DISTID], "sm2-revoked"), ("rsa", "sha256", [], None)):
        cnf = p(kind + "-ca.cnf")
        with open(cnf, "w") as f:
            f.write("[ca]\ndefault_ca=inter\n[inter]\ndatabase=%s\ncrlnumber=%s\ndefault_md=%s\n"
                    "default_crl_days=30\nunique_subject=no\n" % (p(kind + "-index.txt"), p(kind + "-crlnumber"), md))
        with open(p(kind + "-index.txt"), "w"):
            pass
        with open(p(kind + "-crlnumber"), "w") as f:
            f.write("01\n")
        ca = ["-config", cnf, "-keyfile", p(kind + "-inter.key"), "-cert", p(kind + "-inter.pem"), "-md", md]
        for valid in (("sm2-user", "sm2-user-enc") if kind == "sm2" else ("rsa-user",)):
            _run("openssl", "ca", "-batch", *ca, "-valid", p(valid + ".pem"))
        if revoke:
            _run("openssl", "ca", "-batch", *ca, "-revoke", p(revoke + ".pem"))
        _run("openssl", "x509", "-in", p(kind + "-inter.pem"), "-outform", "DER", "-out", p(kind + "-inter.crt"))
    renew_crls(d)

    def cat(out, *names):
        with open(p(out), "w") as f:
            for name in names:
                with open(p(name)) as g:
                    f.write(g.read())
    cat("sm2-chain.pem", "sm2-inter.pem", "sm2-root.pem")
    cat("rsa-chain.pem", "rsa-inter.pem", "rsa-root.pem")
    cat("anchors.pem", "sm2-root.pem", "rsa-root.pem")

    pki = types.SimpleNamespace(
        dir=d, root=p("sm2-root.pem"), root_key=p("sm2-root.key"), inter=p("sm2-inter.pem"),
        inter_key=p("sm2-inter.key"), inter_der=p("sm2-inter.crt"),
        user=p("sm2-user.pem"), user_key=p("sm2-user.key"),
        user_enc=p("sm2-user-enc.pem"), user_enc_key=p("sm2-user-enc.key"),
        revoked=p("sm2-revoked.pem"), revoked_key=p("sm2-revoked.key"),
        rsa_root=p("rsa-root.pem"), rsa_inter=p("rsa-inter.pem"), rsa_inter_der=p("rsa-inter.crt"),
        rsa_user=p("rsa-user.pem"), rsa_user_key=p("rsa-user.key"),
        crl=p("sm2-inter.crl.pem"), crl_der=p("sm2-inter.crl"),
        rsa_crl=p("rsa-inter.crl.pem"), rsa_crl_der=p("rsa-inter.crl"),
        chain=p("sm2-chain.pem"), rsa_chain=p("rsa-chain.pem"), anchors=p("anchors.pem"), index=p("sm2-index.txt"),
        base_url=base_url)
    if check:
        check_sm2_pki(pki)
    return pki


# ---- independent checks ----------------------------------------------------

def _der_tlv(buf, off):
    """(tag, header length, content length) of the DER element at off."""
    tag = buf[off]
    first = buf[off + 1]
    if first < 0x80:
        return tag, 2, first
    n = first & 0x7f
    return tag, 2 + n, int.from_bytes(buf[off + 2:off + 2 + n], "big")


def _signed_parts(der):
    """A certificate or CRL (SEQUENCE { tbs, algorithm, BIT STRING }) -> (tbs
    element bytes, signature bytes)."""
    tag, hl, _ = _der_tlv(der, 0)
    assert tag == 0x30, "not a SEQUENCE"
    off = hl
    tag, thl, tlen = _der_tlv(der, off)
    tbs = der[off:off + thl + tlen]
    off += thl + tlen
    tag, ahl, alen = _der_tlv(der, off)
    off += ahl + alen
    tag, bhl, blen = _der_tlv(der, off)
    assert tag == 0x03, "no BIT STRING signature"
    return tbs, der[off + bhl + 1:off + bhl + blen]  # skip the unused-bits byte


def _der_of(path, kind):
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"-----BEGIN"):
        data = _run("openssl", kind, "-in", path, "-outform", "DER")
    return data


def verify_sm2_signed(path, issuer_pem, kind="x509"):
    """Checks the SM2-with-SM3 signature of a certificate (kind "x509") or CRL
    ("crl") at path against the issuer's key, with the default ID, through
    `openssl pkeyutl -rawin` on the extracted to-be-signed part. This is the
    check `openssl verify` cannot make for a 3-level SM2 chain (openssl#23471)
    and `openssl crl -CAfile` cannot make at all (it has no -vfyopt)."""
    tbs, sig = _signed_parts(_der_of(path, kind))
    with tempfile.TemporaryDirectory() as tmp:
        pubkey = os.path.join(tmp, "issuer.pub")
        with open(pubkey, "wb") as f:
            f.write(_run("openssl", "x509", "-in", issuer_pem, "-noout", "-pubkey"))
        for name, data in (("tbs", tbs), ("sig", sig)):
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        _run("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pubkey, "-rawin", "-digest", "sm3",
             "-pkeyopt", DISTID, "-in", os.path.join(tmp, "tbs"), "-sigfile", os.path.join(tmp, "sig"))


def check_sm2_pki(pki):
    """Checks every link of both chains and both CRLs; raises on a failure.

    What works on OpenSSL 3.0.19 and is used here:
    - `openssl verify -vfyopt distid:… -CAfile root inter`: a 2-level SM2 chain;
    - `openssl verify -vfyopt distid:… -partial_chain -CAfile inter user`:
      the user against the intermediate as the trust anchor;
    - every SM2 signature (root self-signature, each certificate, the CRL)
      once more through pkeyutl -rawin -digest sm3 -pkeyopt distid:…
      (verify_sm2_signed), which also covers the CRL;
    - the RSA chain and its CRL with plain `openssl verify -crl_check`.
    What does not: `openssl verify -untrusted inter user` for SM2 (the ID is
    set on the target certificate only, openssl#23471), `-check_ss_sig` on an
    SM2 root, and `openssl crl -CAfile` on an SM2 CRL (no -vfyopt there)."""
    def verify(*args):
        out = _run("openssl", "verify", *args).decode()
        if ": OK" not in out:
            raise RuntimeError("openssl verify %s: %s" % (" ".join(args), out))
    verify("-vfyopt", DISTID, "-CAfile", pki.root, pki.inter)
    for cert in (pki.user, pki.user_enc, pki.revoked):
        verify("-vfyopt", DISTID, "-partial_chain", "-CAfile", pki.inter, cert)
    verify_sm2_signed(pki.root, pki.root)
    verify_sm2_signed(pki.inter, pki.root)
    for cert in (pki.user, pki.user_enc, pki.revoked):
        verify_sm2_signed(cert, pki.inter)
    verify_sm2_signed(pki.crl, pki.inter, kind="crl")
    serial = _run("openssl", "x509", "-in", pki.revoked, "-noout", "-serial").decode().strip().split("=")[1]
    listed = _run("openssl", "crl", "-in", pki.crl, "-noout", "-text").decode()
    if ("Serial Number: " + serial).upper() not in listed.upper():
        raise RuntimeError("the SM2 CRL does not list the revoked certificate %s" % serial)
    for pem in (pki.user, pki.user_key, pki.user_enc_key):
        if "SM2" not in _run("openssl", "pkey" if pem.endswith(".key") else "x509", "-in", pem, "-noout",
                             "-text").decode():
            raise RuntimeError("%s is not an SM2 key" % pem)
    # RSA: the whole chain and its (empty) CRL in one go.
    with tempfile.TemporaryDirectory() as tmp:
        crls = os.path.join(tmp, "crls.pem")
        with open(crls, "w") as f:
            f.write(open(pki.rsa_crl).read())
        verify("-CAfile", pki.rsa_root, "-untrusted", pki.rsa_inter, "-CRLfile", crls, "-crl_check", pki.rsa_user)


# ---- the soft SKF token's state file ----------------------------------------

def skf_device(pki, name="SOFTSKF-SM2-0001", present=True, serial="SKF0001", label="SM2 demo token",
               pin="123456", pin_tries=6, pin_left=None, default_pin=False,
               admin_pin="12345678", admin_tries=10, admin_left=None,
               app="UKEY-APP", containers=None):
    """One device of the state file (tests/skf/README.md): application `app`
    with an SM2 container (sign = user, enc = user_enc) and an RSA container
    (sign = rsa_user), unless `containers` (a list of container dicts) says
    otherwise."""
    if containers is None:
        containers = [
            {"name": "SM2-CONTAINER", "type": 2, "sign_cert": pki.user, "sign_key": pki.user_key,
             "enc_cert": pki.user_enc, "enc_key": pki.user_enc_key},
            {"name": "RSA-CONTAINER", "type": 1, "sign_cert": pki.rsa_user, "sign_key": pki.rsa_user_key},
        ]
    return {
        "name": name, "present": present,
        "manufacturer": "ukey-agent soft SKF", "issuer": "ukey-agent tests", "label": label, "serial": serial,
        "applications": [{
            "name": app,
            "pin": pin, "pin_max_retries": pin_tries,
            "pin_retries_left": pin_tries if pin_left is None else pin_left, "default_pin": default_pin,
            "admin_pin": admin_pin, "admin_max_retries": admin_tries,
            "admin_retries_left": admin_tries if admin_left is None else admin_left,
            "containers": containers,
        }],
    }


def _write_atomic(path, state):
    """The library may read the file at any moment: never let it see half."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2, ensure_ascii=False)
    os.replace(tmp, path)


def write_skf_state(path, pki, devices=None, faults=None, second_device=False, **device_kwargs):
    """Writes a softskf state file: by default one device SOFTSKF-SM2-0001
    with application UKEY-APP (SM2-CONTAINER + RSA-CONTAINER), PIN 123456
    (6 tries), admin PIN 12345678 (10 tries). Keyword arguments go to
    skf_device (pin, pin_tries, pin_left, default_pin, admin_pin, admin_tries,
    admin_left, present, serial, label, name, app, containers); `devices`
    replaces the device list outright; `second_device` adds
    SOFTSKF-SM2-0002 (serial SKF0002) holding the SM2 container only;
    `faults` is the faults object (README)."""
    if devices is None:
        devices = [skf_device(pki, **device_kwargs)]
        if second_device:
            devices.append(skf_device(pki, name="SOFTSKF-SM2-0002", serial="SKF0002", label="SM2 second token",
                                      containers=[devices[0]["applications"][0]["containers"][0]]))
    state = {"devices": devices, "faults": faults or {}}
    _write_atomic(path, state)
    return state


def read_skf_state(path):
    with open(path) as f:
        return json.load(f)


def edit_skf_state(path, change):
    """Reads the state, calls change(state) to edit it in place, writes it
    back atomically; returns the new state."""
    state = read_skf_state(path)
    change(state)
    _write_atomic(path, state)
    return state


def set_present(path, present, device="SOFTSKF-SM2-0001"):
    """Inserts (True) or removes (False) a device."""
    def change(state):
        for dev in state["devices"]:
            if dev["name"] == device:
                dev["present"] = present
    return edit_skf_state(path, change)


def set_faults(path, **faults):
    """Replaces the faults object, e.g. set_faults(path, hang=["SKF_EnumDev"])."""
    def change(state):
        state["faults"] = faults
    return edit_skf_state(path, change)


def self_test():
    """Makes the PKI with a base URL in a temporary directory and checks it:
    check_sm2_pki, the published files, the distribution points and AIA of
    every user certificate, that a wrong issuer is refused, and the state
    file's shape. Run by ctest as unit.test_sm2pki."""
    import shutil
    d = tempfile.mkdtemp(prefix="sm2pki-")
    try:
        url = "http://127.0.0.1:9/pki"
        pki = make_sm2_pki(d, base_url=url)   # runs check_sm2_pki
        for name in ("sm2-inter.crl", "sm2-inter.crt", "rsa-inter.crl", "rsa-inter.crt"):
            kind = "crl" if name.endswith(".crl") else "x509"
            _run("openssl", kind, "-inform", "DER", "-in", os.path.join(d, name), "-noout")
        for cert, kind in ((pki.user, "sm2"), (pki.user_enc, "sm2"), (pki.revoked, "sm2"), (pki.rsa_user, "rsa")):
            text = _run("openssl", "x509", "-in", cert, "-noout", "-text").decode()
            for uri in ("URI:%s/%s-inter.crl" % (url, kind), "CA Issuers - URI:%s/%s-inter.crt" % (url, kind)):
                assert uri in text, "%s lacks %s" % (cert, uri)
        text = _run("openssl", "x509", "-in", pki.user, "-noout", "-text", "-nameopt", "utf8").decode()
        assert "CN=张三" in text.replace(" = ", "=") and "Digital Signature, Non Repudiation" in text, text
        assert "TLS Web Client Authentication" in text
        text = _run("openssl", "x509", "-in", pki.user_enc, "-noout", "-text").decode()
        assert "Key Encipherment, Data Encipherment, Key Agreement" in text, text
        try:
            verify_sm2_signed(pki.user, pki.root)
        except RuntimeError:
            pass
        else:
            raise AssertionError("a certificate verified against the wrong issuer")
        state_path = os.path.join(d, "skf.json")
        write_skf_state(state_path, pki, second_device=True, pin_left=2, faults={"bad_cert": True})
        set_present(state_path, False, device="SOFTSKF-SM2-0002")
        state = read_skf_state(state_path)
        app = state["devices"][0]["applications"][0]
        assert [c["name"] for c in app["containers"]] == ["SM2-CONTAINER", "RSA-CONTAINER"]
        assert (app["pin"], app["pin_max_retries"], app["pin_retries_left"]) == ("123456", 6, 2)
        assert (app["admin_pin"], app["admin_retries_left"]) == ("12345678", 10)
        assert state["devices"][1]["name"] == "SOFTSKF-SM2-0002" and state["devices"][1]["present"] is False
        assert state["faults"] == {"bad_cert": True}
    finally:
        shutil.rmtree(d)
    print("sm2pki self-test: OK")
    return 0


def renew_crls(d):
    """Issues both intermediates' CRLs anew (30 days) from their databases in
    d: PEM (*-inter.crl.pem) and DER (*-inter.crl). The SM2 one is signed
    with SM3 and the ID like every other SM2 signature here."""
    for kind, md, extra in (("sm2", "sm3", ["-sigopt", DISTID]), ("rsa", "sha256", [])):
        p = lambda name: os.path.join(d, name)  # noqa: E731
        _run("openssl", "ca", "-batch", "-config", p(kind + "-ca.cnf"), "-keyfile", p(kind + "-inter.key"), "-cert",
             p(kind + "-inter.pem"), "-md", md, *extra, "-gencrl", "-out", p(kind + "-inter.crl.pem"))
        _run("openssl", "crl", "-in", p(kind + "-inter.crl.pem"), "-outform", "DER", "-out", p(kind + "-inter.crl"))


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    if len(argv) == 2 and argv[0] == "--renew-crls":
        renew_crls(argv[1])
        return 0
    import argparse
    parser = argparse.ArgumentParser(description="Makes the SM2 test PKI (and a softskf state file).")
    parser.add_argument("dir")
    parser.add_argument("--state", help="write a softskf state file here")
    parser.add_argument("--base-url", help="CRL distribution point and AIA base URL")
    parser.add_argument("--no-check", action="store_true", help="skip check_sm2_pki (about 2 s)")
    args = parser.parse_args(argv)
    pki = make_sm2_pki(args.dir, base_url=args.base_url, check=not args.no_check)
    if args.state:
        write_skf_state(args.state, pki)
    json.dump(vars(pki), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
