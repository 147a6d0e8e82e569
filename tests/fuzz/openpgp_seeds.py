#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_openpgp (tests/fuzz/corpus/openpgp): card
sessions as the replay transport reads them (driver_session.h), each answer
a 2-byte big-endian length and data + SW. Run from the source tree; the
certificates come from tests/fuzz/corpus/cert."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
AID = bytes.fromhex("D276000124010304FFFE1234ABCD0000")
P256 = bytes.fromhex("132A8648CE3D030107")
RSA = bytes.fromhex("010800002000")


def tlv(tag, value):
    t = tag.to_bytes(2 if tag > 0xff else 1, "big")
    n = len(value)
    ln = bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else bytes([0x82]) + n.to_bytes(2, "big")
    return t + ln + value


def answers(data, sw=0x9000):
    """One response, split as a card with short APDUs does (61xx + GET RESPONSE)."""
    out = []
    while len(data) > 256:
        rest = len(data) - 256
        out.append(data[:256] + bytes([0x61, rest if rest < 256 else 0]))
        data = data[256:]
    out.append(data + sw.to_bytes(2, "big"))
    return out


def c4(pw1=3, rc=3):
    return bytes([0, 64, 127, 127, pw1, rc, 3])


def app_data(aut_attr, aut_fpr=b"\x01" * 20, with_73=True):
    disc = tlv(0xC0, bytes(10)) + tlv(0xC1, RSA) + tlv(0xC2, RSA) + tlv(0xC3, aut_attr) + tlv(0xC4, c4()) + \
        tlv(0xC5, bytes(40) + aut_fpr) + tlv(0xC6, bytes(60)) + tlv(0xCD, bytes(12))
    inner = tlv(0x4F, AID) + tlv(0x5F52, bytes.fromhex("0031C573C001800590 00".replace(" ", "")))
    return tlv(0x6E, inner + (tlv(0x73, disc) if with_73 else disc))


def session(aut_attr, cert, sig_answers, select_data=0x9000, pin=(0x9000,), extra_read=None):
    a = [b"\x90\x00"]                                   # SELECT
    a += answers(AID)                                   # identify: 4F
    a += answers(AID)                                   # read: 4F
    a += answers(app_data(aut_attr)) if extra_read is None else extra_read
    a.append(select_data.to_bytes(2, "big"))            # SELECT DATA
    a += cert                                           # GET DATA 7F21
    a += answers(c4())                                  # PIN status
    for sw in pin:                                      # VERIFY (and C4 after 6982)
        a.append(sw.to_bytes(2, "big"))
        if sw == 0x6982:
            a += answers(c4(pw1=2))
    if pin[-1] == 0x9000:
        a += sig_answers                                # INTERNAL AUTHENTICATE x3
    a.append(b"\x69\x82")                               # RESET RETRY COUNTER: wrong code
    a += answers(c4(pw1=2, rc=2))
    a.append(b"\x90\x00")                               # logout
    return b"".join(struct.pack(">H", len(x)) + x for x in a)


def main():
    corpus = os.path.join(HERE, "corpus", "openpgp")
    os.makedirs(corpus, exist_ok=True)
    es256 = open(os.path.join(HERE, "corpus", "cert", "es256.der"), "rb").read()
    rs256 = open(os.path.join(HERE, "corpus", "cert", "rs256.der"), "rb").read()
    ec_sigs = answers(bytes(range(64))) + [b"\x6a\x80"] + answers(bytes(range(96)))
    rsa_sigs = [b"\x6a\x80"] + answers(bytes(256)) + [b"\x6a\x80"]
    seeds = {
        "good-session": session(P256, answers(es256), ec_sigs),
        "rsa-session": session(RSA, answers(rs256), rsa_sigs),
        "wrong-pin": session(P256, answers(es256), [], pin=(0x6982,)),
        "blocked": session(P256, answers(es256), [], pin=(0x6983,)),
        "pin-63cx": session(P256, answers(es256), [], pin=(0x63C1,)),
        # A 2.x card: no SELECT DATA, and the certificate inside its 7F21.
        "v2-wrapped-cert": session(P256, answers(tlv(0x7F21, es256)), ec_sigs, select_data=0x6D00),
        "no-cert": session(P256, [b"\x6a\x88"], ec_sigs),
        "truncated-cert": session(P256, answers(es256[:len(es256) // 2]), ec_sigs),
        "bad-6e": session(P256, answers(es256), ec_sigs, extra_read=answers(app_data(P256, with_73=False)[2:])),
        "short-aid": b"\x00\x02\x90\x00" + struct.pack(">H", 6) + AID[:4] + b"\x90\x00",
        "not-openpgp": b"\x00\x02\x6a\x82",
    }
    for name, data in seeds.items():
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
