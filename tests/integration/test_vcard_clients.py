"""The virtual card is a PIV card, not something only our driver
understands: OpenSC (pkcs15-tool, pkcs11-tool with opensc-pkcs11.so) and
yubico-piv-tool read it, sign with it, and their signatures verify with
openssl; and the agent reports the same certificates they do (issue 3)."""
import base64
import glob
import hashlib
import json
import os
import shutil
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcsc  # noqa: E402
pcsc.in_private_namespace()
import agent as harness  # noqa: E402
from agent import run_tool  # noqa: E402

OPENSC_PKCS11 = (glob.glob("/usr/lib/*/opensc-pkcs11.so") or ["opensc-pkcs11.so (install opensc)"])[0]


def der(pem):
    return base64.b64decode("".join(pem.strip().splitlines()[1:-1]))


class IndependentClients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pcscd = pcsc.Pcscd().start()
        cls.dir = tempfile.mkdtemp(prefix="ukey-clients-")
        cls.pki = pcsc.make_pki(cls.dir)

    @classmethod
    def tearDownClass(cls):
        cls.pcscd.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.state = os.path.join(self.dir, "card-%s.json" % self.id().rsplit(".", 1)[1])
        pcsc.write_card_state(self.state, self.pki)
        self.card = pcsc.VirtualCard(self.pcscd, self.state).insert()

    def tearDown(self):
        self.card.remove()

    def test_pkcs15_tool_lists_the_certificates(self):
        out = run_tool("pkcs15-tool", "--list-certificates").stdout
        self.assertIn("Certificate for PIV Authentication", out)
        self.assertIn("Certificate for Digital Signature", out)
        serials = re.findall(r"Encoded serial : 02 \w+ ([0-9A-F]+)", out)
        for slot in ("9a", "9c"):
            serial = run_tool("openssl", "x509", "-noout", "-serial", input=self.pki[slot][0]).stdout
            self.assertIn(serial.split("=")[1].strip().upper(), serials)

    def test_yubico_piv_tool_status(self):
        out = run_tool("yubico-piv-tool", "-r", pcsc.READER, "-a", "status").stdout
        self.assertRegex(out, r"Slot 9a:\s+Algorithm:\s+ECCP256")
        self.assertRegex(out, r"Slot 9c:\s+Algorithm:\s+RSA2048")
        for slot in ("9a", "9c"):
            self.assertIn(hashlib.sha256(der(self.pki[slot][0])).hexdigest(), out)
        self.assertRegex(out, r"PIN tries left:\s+3")
        self.assertIn("00112233445566778899aabbccddeeff", out)  # the GUID in the CHUID

    def test_pkcs11_signatures_verify_with_openssl(self):
        data = os.path.join(self.dir, "data.bin")
        with open(data, "wb") as f:
            f.write(b"ukey-agent independent client check")
        for slot, obj_id, mech, fmt in (("9a", "01", "ECDSA-SHA256", ["--signature-format", "openssl"]),
                                        ("9c", "02", "SHA256-RSA-PKCS", [])):
            sig = os.path.join(self.dir, "sig-" + slot)
            run_tool("pkcs11-tool", "--module", OPENSC_PKCS11, "--login", "--pin", "123456", "--sign",
                     "-m", mech, "--id", obj_id, "-i", data, "-o", sig, *fmt)
            pub = os.path.join(self.dir, "pub-" + slot)
            with open(pub, "w") as f:
                f.write(run_tool("openssl", "x509", "-noout", "-pubkey", input=self.pki[slot][0]).stdout)
            ok = run_tool("openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, data)
            self.assertIn("Verified OK", ok.stdout, slot)
        log = self.card.apdu_log()
        self.assertTrue(any(l.startswith("APDU 00 87 11 9A") for l in log), log)
        self.assertTrue(any(re.match(r"APDU (00|10) 87 07 9C", l) for l in log), log)

    def test_wrong_pin_through_pkcs11_counts_on_the_card(self):
        r = run_tool("pkcs11-tool", "--module", OPENSC_PKCS11, "--login", "--pin", "000000", "--list-objects",
                     check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(pcsc.read_card_state(self.state)["pin_tries"], 2)

    def test_agent_reports_what_the_clients_see(self):
        agent = harness.Agent().start()
        try:
            status, _, body = agent.get_json("/api/v1/tokens")
            self.assertEqual(status, 200)
            certs = {c["id"]: base64.b64decode(c["der"]) for c in body["tokens"][0]["certificates"]}
            self.assertEqual(certs, {slot: der(self.pki[slot][0]) for slot in ("9a", "9c")})
            out = run_tool("yubico-piv-tool", "-r", pcsc.READER, "-a", "status").stdout
            for slot, raw in certs.items():
                self.assertIn(hashlib.sha256(raw).hexdigest(), out)
        finally:
            agent.cleanup()


if __name__ == "__main__":
    harness.main()
