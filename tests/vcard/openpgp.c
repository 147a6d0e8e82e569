/*
 * The OpenPGP card application of ukey-vcard (Functional Specification of
 * the OpenPGP application on ISO smart card operating systems, 3.4; cited
 * "OpenPGP 3.4 x.y"): enough of it for the agent's driver, GnuPG's
 * scdaemon and OpenSC's openpgp driver. Only the keys of the state file's
 * slots "aut", "dec", "sig" exist; the authentication key signs with
 * INTERNAL AUTHENTICATE. PW3 (the admin PIN) is never accepted, so nothing
 * on the card can be changed but PW1.
 */
#include "vcard.h"
#include "x509/sigenc.h"

#include <mbedtls/ecp.h>
#include <mbedtls/rsa.h>
#include <stdlib.h>
#include <string.h>

/* OpenPGP 3.4 4.2.1: RID, PIX 01, version 3.4, manufacturer FFFE (the
 * unmanaged range), serial number (from the state), RFU. */
static const unsigned char aid_prefix[] = {0xd2, 0x76, 0x00, 0x01, 0x24, 0x01, 0x03, 0x04, 0xff, 0xfe};

/* OpenPGP 3.4 4.2.2 / ISO 7816-4 8.1.1: category 00, card service data
 * (31 C5), card capabilities (73: selection by full and partial DF name,
 * command chaining, no extended Lc/Le), status 05 90 00. */
static const unsigned char historical[] = {0x00, 0x31, 0xc5, 0x73, 0xc0, 0x01, 0x80, 0x05, 0x90, 0x00};

#define PW1_MAX 64 /* PW1's maximum length in C4: the driver must read it from there */
#define SLOT_AUT 0
#define SLOT_DEC 1
#define SLOT_SIG 2

static size_t put_aid(const struct vcard *card, unsigned char *out)
{
    memcpy(out, aid_prefix, sizeof aid_prefix);
    memcpy(out + sizeof aid_prefix, card->serial, 4);
    out[14] = out[15] = 0x00;
    return 16;
}

/* OpenPGP 3.4 4.4.3.9: algorithm attributes of a slot's key (RSA 2048
 * when the slot is empty, as a blank card reports). */
static size_t put_algo(const struct vcard_slot *s, int ecdh, unsigned char *out)
{
    static const unsigned char p256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    static const unsigned char p384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
    if (s->has_key && mbedtls_pk_get_type(&s->key) == MBEDTLS_PK_ECKEY) {
        int big = mbedtls_pk_get_bitlen(&s->key) == 384;
        out[0] = ecdh ? 0x12 : 0x13;
        memcpy(out + 1, big ? p384 : p256, big ? sizeof p384 : sizeof p256);
        return 1 + (big ? sizeof p384 : sizeof p256);
    }
    /* 01, modulus bits, public exponent bits, import format 00 (e, p, q) */
    out[0] = 0x01, out[1] = 0x08, out[2] = 0x00, out[3] = 0x00, out[4] = 0x20, out[5] = 0x00;
    return 6;
}

/* OpenPGP 3.4 4.4.1, DO C4: PW1 valid for one PSO:CDS, maximum lengths of
 * PW1, RC and PW3, then their retry counters. */
static size_t put_pw_status(const struct vcard *card, unsigned char *out)
{
    out[0] = 0x00, out[1] = PW1_MAX, out[2] = 0x7f, out[3] = 0x7f;
    out[4] = (unsigned char)card->pin_tries, out[5] = (unsigned char)card->puk_tries, out[6] = 3;
    return 7;
}

/* A simple DO of the discretionary data (73) by tag, value only; 0 if unknown. */
static size_t simple_do(const struct vcard *card, unsigned tag, unsigned char *out)
{
    /* C0 extended capabilities (3.x, 10 bytes): no SM, GET CHALLENGE, key
     * import or changeable attributes; cardholder certificates up to 2048
     * bytes; special DOs up to 255. */
    static const unsigned char ext_caps[] = {0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0xff, 0x00, 0x00};
    switch (tag) {
    case 0xc0:
        memcpy(out, ext_caps, sizeof ext_caps);
        return sizeof ext_caps;
    case 0xc1:
        return put_algo(&card->slots[SLOT_SIG], 0, out);
    case 0xc2:
        return put_algo(&card->slots[SLOT_DEC], 1, out);
    case 0xc3:
        return put_algo(&card->slots[SLOT_AUT], 0, out);
    case 0xc4:
        return put_pw_status(card, out);
    case 0xc5: /* fingerprints: SIG, DEC, AUT */
        memcpy(out, card->slots[SLOT_SIG].fpr, 20);
        memcpy(out + 20, card->slots[SLOT_DEC].fpr, 20);
        memcpy(out + 40, card->slots[SLOT_AUT].fpr, 20);
        return 60;
    case 0xc6: /* CA fingerprints */
        memset(out, 0, 60);
        return 60;
    case 0xcd: /* key generation dates */
        memset(out, 0, 12);
        return 12;
    }
    return 0;
}

/* Writes tag (1 or 2 bytes), BER length and value; returns the size. */
static size_t put_tlv(unsigned char *out, unsigned tag, const unsigned char *value, size_t len)
{
    size_t n = 0;
    if (tag > 0xff)
        out[n++] = (unsigned char)(tag >> 8);
    out[n++] = (unsigned char)tag;
    n += vcard_put_len(out + n, len);
    memmove(out + n, value, len);
    return n + len;
}

/* OpenPGP 3.4 4.4.3.1: 6E { 4F, 5F52, 73 { C0 .. C6, CD } }. */
static size_t application_data(const struct vcard *card, unsigned char *out)
{
    static const unsigned tags[] = {0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xcd};
    unsigned char inner[512], disc[400], v[64];
    size_t n = 0, d = 0;
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        size_t len = simple_do(card, tags[i], v);
        d += put_tlv(disc + d, tags[i], v, len);
    }
    n += put_tlv(inner + n, 0x4f, v, put_aid(card, v));
    n += put_tlv(inner + n, 0x5f52, historical, sizeof historical);
    n += put_tlv(inner + n, 0x73, disc, d);
    return put_tlv(out, 0x6e, inner, n);
}

/* OpenPGP 3.4 7.2.6 GET DATA: P1-P2 is the tag. */
static void get_data(struct vcard *card, unsigned tag, unsigned char *out, size_t *out_len)
{
    unsigned char buf[4096], v[128];
    size_t n;
    switch (tag) {
    case 0x4f:
        vcard_reply_data(card, buf, put_aid(card, buf), out, out_len);
        return;
    case 0x5f52:
        vcard_reply_data(card, historical, sizeof historical, out, out_len);
        return;
    case 0x5e:   /* login data */
    case 0x5f50: /* URL */
        vcard_reply_sw(0x9000, out, out_len); /* present, empty */
        return;
    case 0x65: { /* cardholder related data: name, language, sex (9: not announced) */
        static const unsigned char name[] = "Zhang<<San", lang[] = "zhen", sex[] = "9";
        n = put_tlv(v, 0x5b, name, sizeof name - 1);
        n += put_tlv(v + n, 0x5f2d, lang, sizeof lang - 1);
        n += put_tlv(v + n, 0x5f35, sex, sizeof sex - 1);
        vcard_reply_data(card, buf, put_tlv(buf, 0x65, v, n), out, out_len);
        return;
    }
    case 0x6e:
        vcard_reply_data(card, buf, application_data(card, buf), out, out_len);
        return;
    case 0x7a: { /* security support template: the digital signature counter */
        static const unsigned char counter[] = {0x93, 0x03, 0x00, 0x00, 0x00};
        vcard_reply_data(card, buf, put_tlv(buf, 0x7a, counter, sizeof counter), out, out_len);
        return;
    }
    case 0x7f21: {
        /* The selected occurrence's certificate, DER without the 7F21 wrapper. */
        const struct vcard_slot *s = card->occurrence < 3 ? &card->slots[card->occurrence] : NULL;
        if (!s || !s->cert) {
            vcard_reply_sw(0x9000, out, out_len); /* present, empty */
            return;
        }
        n = s->cert_len;
        if (card->faults.truncate)
            n /= 2;
        if (card->faults.bad_tlv && n > 4) {
            /* A length no certificate can have (security.md CARD-06). */
            memcpy(buf, s->cert, n);
            buf[1] = 0x84;
            vcard_reply_data(card, buf, n, out, out_len);
            return;
        }
        vcard_reply_data(card, s->cert, n, out, out_len);
        return;
    }
    }
    if ((n = simple_do(card, tag, v)) > 0) {
        vcard_reply_data(card, v, n, out, out_len);
        return;
    }
    vcard_reply_sw(0x6a88, out, out_len);
}

/* OpenPGP 3.4 7.2.5 SELECT DATA: the occurrence of 7F21 that GET DATA reads
 * next; the data is 60 { 5C 7F21 } (3.4) or 5C 7F21 (earlier texts). */
static unsigned select_data(struct vcard *card, unsigned char p1, unsigned char p2, const unsigned char *data,
                            size_t lc)
{
    static const unsigned char sel[] = {0x60, 0x04, 0x5c, 0x02, 0x7f, 0x21};
    if (p2 != 0x04)
        return 0x6a86;
    if (!((lc == sizeof sel && memcmp(data, sel, lc) == 0) ||
          (lc == sizeof sel - 2 && memcmp(data, sel + 2, lc) == 0)))
        return 0x6a80;
    if (p1 > 2)
        return 0x6a88;
    card->occurrence = p1;
    return 0x9000;
}

/* A PIN command's value (UTF-8 bytes, no NUL) as a C string; -1 if it cannot be one. */
static int take_secret(const unsigned char *data, size_t len, char out[VCARD_SECRET_MAX + 1])
{
    if (len < 6 || len > VCARD_SECRET_MAX || memchr(data, 0, len))
        return -1;
    memcpy(out, data, len);
    out[len] = '\0';
    return 0;
}

/* Real cards answer a wrong PW1 with 6982 and keep the count in C4; so does this one. */
static unsigned as_card_answers(unsigned sw)
{
    return (sw & 0xfff0) == 0x63c0 ? 0x6982 : sw;
}

/* OpenPGP 3.4 7.2.2 VERIFY, 7.2.3 CHANGE REFERENCE DATA, 7.2.4 RESET RETRY COUNTER. */
static unsigned pin_command(struct vcard *card, unsigned char ins, unsigned char p1, unsigned char p2,
                            const unsigned char *data, size_t lc)
{
    char a[VCARD_SECRET_MAX + 1], b[VCARD_SECRET_MAX + 1];
    int *verified = p2 == 0x81 ? &card->pw1_cds_verified : &card->pin_verified;
    size_t old_len;
    unsigned sw;

    if (ins == 0x20) {
        if (p2 != 0x81 && p2 != 0x82)
            return p2 == 0x83 ? (lc ? 0x6982 : 0x63c3) : 0x6a86; /* PW3: never */
        if (p1 == 0xff && lc == 0) {
            *verified = 0;
            return 0x9000;
        }
        if (p1 != 0x00)
            return 0x6a86;
        if (lc == 0)
            return *verified ? 0x9000 : card->pin_tries ? 0x63c0u | (unsigned)card->pin_tries : 0x6983;
        if (take_secret(data, lc, a) != 0)
            return 0x6700;
        sw = as_card_answers(vcard_check_secret(card, a, 0));
        *verified = sw == 0x9000;
        return sw;
    }
    /* CHANGE (P1 00, P2 81): old PW1 || new. RESET RETRY COUNTER (P1 00,
     * P2 81): Resetting Code || new PW1; with P1 02 it would need PW3. */
    if (p2 != 0x81)
        return 0x6a86;
    if (ins == 0x2c && p1 == 0x02)
        return 0x6982;
    if (p1 != 0x00)
        return 0x6a86;
    /* The card splits the data at the length of its current value: the
     * old value is checked (and counted) first, then the new one. */
    old_len = strlen(ins == 0x24 ? card->pin : card->puk);
    if (lc > VCARD_SECRET_MAX * 2)
        return 0x6700;
    memcpy(a, data, lc < old_len ? lc : old_len);
    a[lc < old_len ? lc : old_len] = '\0';
    sw = as_card_answers(vcard_check_secret(card, lc > old_len ? a : "", ins == 0x2c));
    if (sw != 0x9000)
        return sw;
    if (take_secret(data + old_len, lc - old_len, b) != 0 || lc - old_len > PW1_MAX)
        return 0x6700;
    strcpy(card->pin, b);
    card->pin_tries = card->pin_tries_max;
    vcard_state_save(card);
    return 0x9000;
}

/* OpenPGP 3.4 7.2.13 INTERNAL AUTHENTICATE with the authentication key:
 * RSA pads the DigestInfo (PKCS#1 v1.5 type 1), ECDSA answers r || s. */
static void internal_authenticate(struct vcard *card, const unsigned char *data, size_t lc, unsigned char *out,
                                  size_t *out_len)
{
    struct vcard_slot *s = &card->slots[SLOT_AUT];
    unsigned char em[512], sig[512], raw[96];
    size_t sig_len = 0;

    if (!s->has_key) {
        vcard_reply_sw(0x6a88, out, out_len);
        return;
    }
    if (!card->pin_verified) {
        vcard_reply_sw(0x6982, out, out_len);
        return;
    }
    if (mbedtls_pk_get_type(&s->key) == MBEDTLS_PK_RSA) {
        size_t k = mbedtls_pk_get_len(&s->key);
        if (lc == 0 || k > sizeof em || lc > k * 4 / 10) {
            vcard_reply_sw(0x6700, out, out_len);
            return;
        }
        em[0] = 0x00, em[1] = 0x01;
        memset(em + 2, 0xff, k - lc - 3);
        em[k - lc - 1] = 0x00;
        memcpy(em + k - lc, data, lc);
        if (mbedtls_rsa_private(mbedtls_pk_rsa(s->key), vcard_rng, NULL, em, sig) != 0) {
            vcard_reply_sw(0x6f00, out, out_len);
            return;
        }
        vcard_reply_data(card, sig, k, out, out_len);
        return;
    }
    {
        size_t n = mbedtls_pk_get_bitlen(&s->key) == 384 ? 48 : 32;
        if (lc != 32 && lc != 48) {
            vcard_reply_sw(0x6700, out, out_len);
            return;
        }
        /* The data is the hash; the digest type only steers mbedTLS's
         * deterministic nonce (RFC 6979). */
        if (mbedtls_pk_sign(&s->key, lc == 48 ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA256, data, lc, sig, &sig_len,
                            vcard_rng, NULL) != 0 ||
            sigenc_ecdsa_der_to_raw(sig, sig_len, n, raw) != 0) {
            vcard_reply_sw(0x6f00, out, out_len);
            return;
        }
        vcard_reply_data(card, raw, 2 * n, out, out_len);
    }
}

/* OpenPGP 3.4 7.2.14 GENERATE ASYMMETRIC KEY PAIR, P1 81: reads a public
 * key as 7F49 { 81 modulus, 82 exponent } or 7F49 { 86 point }. */
static void read_public_key(struct vcard *card, unsigned char p1, const unsigned char *data, size_t lc,
                            unsigned char *out, size_t *out_len)
{
    unsigned char inner[600], buf[640], *p;
    struct vcard_slot *s = NULL;
    size_t n = 0;
    int len;

    if (p1 != 0x81) {
        vcard_reply_sw(0x6982, out, out_len); /* generating needs PW3 */
        return;
    }
    for (int i = 0; i < 3 && lc >= 2; i++)
        if (card->slots[i].key_ref == data[0])
            s = &card->slots[i];
    if (!s || !s->has_key) {
        vcard_reply_sw(0x6a88, out, out_len);
        return;
    }
    if (mbedtls_pk_get_type(&s->key) == MBEDTLS_PK_RSA) {
        unsigned char m[512], e[4];
        size_t k = mbedtls_pk_get_len(&s->key);
        if (k > sizeof m || mbedtls_rsa_export_raw(mbedtls_pk_rsa(s->key), m, k, NULL, 0, NULL, 0, NULL, 0, e,
                                                   sizeof e) != 0) {
            vcard_reply_sw(0x6f00, out, out_len);
            return;
        }
        n = put_tlv(inner, 0x81, m, k);
        n += put_tlv(inner + n, 0x82, e, sizeof e);
    } else {
        /* mbedtls_pk_write_pubkey writes the EC point backwards from the end. */
        p = buf + sizeof buf;
        if ((len = mbedtls_pk_write_pubkey(&p, buf, &s->key)) <= 0) {
            vcard_reply_sw(0x6f00, out, out_len);
            return;
        }
        n = put_tlv(inner, 0x86, p, (size_t)len);
    }
    vcard_reply_data(card, buf, put_tlv(buf, 0x7f49, inner, n), out, out_len);
}

void vcard_openpgp_command(struct vcard *card, unsigned char ins, unsigned char p1, unsigned char p2,
                           const unsigned char *data, size_t lc, unsigned char *out, size_t *out_len)
{
    if (ins == 0xa4) {
        /* OpenPGP 3.4 7.2.1 SELECT by (partial) AID; a failed SELECT leaves
         * the selection as it was. */
        unsigned char aid[16];
        put_aid(card, aid);
        if (p1 != 0x04)
            vcard_reply_sw(0x6a86, out, out_len);
        else if (lc < 6 || lc > sizeof aid || memcmp(data, aid, lc) != 0)
            vcard_reply_sw(0x6a82, out, out_len);
        else {
            card->selected = 1;
            card->occurrence = 0;
            vcard_reply_sw(0x9000, out, out_len);
        }
        return;
    }
    if (!card->selected) {
        vcard_reply_sw(0x6985, out, out_len);
        return;
    }
    switch (ins) {
    case 0xca:
        get_data(card, (unsigned)(p1 << 8 | p2), out, out_len);
        return;
    case 0xcc: /* GET NEXT DATA (7.2.7): the next occurrence of 7F21 */
        if ((p1 << 8 | p2) != 0x7f21 || card->occurrence >= 2) {
            vcard_reply_sw(0x6a88, out, out_len);
            return;
        }
        card->occurrence++;
        get_data(card, 0x7f21, out, out_len);
        return;
    case 0xa5:
        vcard_reply_sw(select_data(card, p1, p2, data, lc), out, out_len);
        return;
    case 0x20:
    case 0x24:
    case 0x2c:
        vcard_reply_sw(pin_command(card, ins, p1, p2, data, lc), out, out_len);
        return;
    case 0x88:
        if (p1 != 0x00 || p2 != 0x00)
            vcard_reply_sw(0x6a86, out, out_len);
        else
            internal_authenticate(card, data, lc, out, out_len);
        return;
    case 0x47:
        read_public_key(card, p1, data, lc, out, out_len);
        return;
    default:
        vcard_reply_sw(0x6d00, out, out_len);
    }
}
