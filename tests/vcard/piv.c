/* The PIV card application of ukey-vcard (NIST SP 800-73-4 Part 2). */
#include "vcard.h"

#include <mbedtls/rsa.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char piv_aid[] = {0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00};

/* SP 800-73-4 Part 2, 3.1.1: SELECT answers the Application Property Template. */
static void select_app(struct vcard *card, const unsigned char *data, size_t len, unsigned char *out,
                       size_t *out_len)
{
    static const unsigned char apt[] = {
        0x61, 0x23, 0x4f, 0x06, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
        0x79, 0x07, 0x4f, 0x05, 0xa0, 0x00, 0x00, 0x03, 0x08,
        0x50, 0x0e, 'u', 'k', 'e', 'y', '-', 'v', 'c', 'a', 'r', 'd', ' ', 'P', 'I', 'V',
        0xac, 0x00,
    };
    if (len < 5 || len > sizeof piv_aid || memcmp(data, piv_aid, len) != 0) {
        /* ISO 7816-4: a failed SELECT leaves the current selection as it was. */
        vcard_reply_sw(0x6a82, out, out_len);
        return;
    }
    card->selected = 1;
    vcard_reply_data(card, apt, sizeof apt, out, out_len);
}

/* Builds a certificate object 53 { 70 cert 71 00 FE 00 }, with faults. */
static size_t cert_object(const struct vcard *card, const struct vcard_slot *s, unsigned char *buf)
{
    size_t n = 0, inner = 4 + s->cert_len + 3 + 2;
    buf[n++] = 0x53;
    if (card->faults.bad_tlv) {
        /* A length no card object can have (security.md CARD-06). */
        buf[n++] = 0x84, buf[n++] = 0xff, buf[n++] = 0xff, buf[n++] = 0xff, buf[n++] = 0xff;
    } else {
        n += vcard_put_len(buf + n, inner);
    }
    buf[n++] = 0x70;
    n += vcard_put_len(buf + n, s->cert_len);
    memcpy(buf + n, s->cert, s->cert_len);
    n += s->cert_len;
    buf[n++] = 0x71, buf[n++] = 0x01, buf[n++] = 0x00;
    buf[n++] = 0xfe, buf[n++] = 0x00;
    return card->faults.truncate ? n / 2 : n;
}

/* SP 800-73-4 Part 2, 3.1.2 GET DATA */
static void get_data(struct vcard *card, const unsigned char *data, size_t len, unsigned char *out,
                     size_t *out_len)
{
    unsigned char buf[8192];
    unsigned tag;
    size_t n = 0;
    if (len == 3 && data[0] == 0x5c && data[1] == 0x01 && data[2] == 0x7e) {
        /* Discovery object: PIV AID and PIN usage policy (application PIN). */
        static const unsigned char disc[] = {0x7e, 0x12, 0x4f, 0x0b, 0xa0, 0x00, 0x00, 0x03, 0x08, 0x00,
                                             0x00, 0x10, 0x00, 0x01, 0x00, 0x5f, 0x2f, 0x02, 0x40, 0x00};
        vcard_reply_data(card, disc, sizeof disc, out, out_len);
        return;
    }
    if (len != 5 || data[0] != 0x5c || data[1] != 0x03) {
        vcard_reply_sw(0x6a80, out, out_len);
        return;
    }
    tag = (unsigned)(data[2] << 16 | data[3] << 8 | data[4]);
    if (tag == 0x5fc102) {
        /* CHUID: FASC-N 30, GUID 34, expiry 35, signature 3E (empty), FE. */
        static const unsigned char fascn[25] = {0xd4, 0xe7, 0x39, 0xda, 0x73, 0x9c, 0xed, 0x39, 0xce,
                                                0x73, 0x9d, 0x83, 0x68, 0x58, 0x21, 0x08, 0x42, 0x10,
                                                0x84, 0x21, 0xc8, 0x42, 0x10, 0xc3, 0xeb};
        unsigned char inner[64];
        size_t m = 0;
        inner[m++] = 0x30, inner[m++] = 25;
        memcpy(inner + m, fascn, 25), m += 25;
        inner[m++] = 0x34, inner[m++] = 16;
        memcpy(inner + m, card->guid, 16), m += 16;
        inner[m++] = 0x35, inner[m++] = 8;
        memcpy(inner + m, "20301231", 8), m += 8;
        inner[m++] = 0x3e, inner[m++] = 0x00;
        inner[m++] = 0xfe, inner[m++] = 0x00;
        buf[n++] = 0x53;
        n += vcard_put_len(buf + n, m);
        memcpy(buf + n, inner, m);
        vcard_reply_data(card, buf, n + m, out, out_len);
        return;
    }
    for (int i = 0; i < VCARD_SLOTS; i++) {
        if (card->slots[i].tag == tag && card->slots[i].cert && card->slots[i].cert_len < sizeof buf - 32) {
            n = cert_object(card, &card->slots[i], buf);
            vcard_reply_data(card, buf, n, out, out_len);
            return;
        }
    }
    vcard_reply_sw(0x6a82, out, out_len);
}

/* A PIV reference data value: 6-8 ASCII characters padded with FF to 8. */
static int unpad(const unsigned char *in, char out[9])
{
    size_t n = 0;
    while (n < 8 && in[n] != 0xff) {
        if (in[n] < 0x20 || in[n] > 0x7e)
            return -1;
        out[n] = (char)in[n];
        n++;
    }
    for (size_t i = n; i < 8; i++)
        if (in[i] != 0xff)
            return -1;
    out[n] = '\0';
    return n >= 6 ? 0 : -1;
}

/* VERIFY 20, CHANGE REFERENCE DATA 24, RESET RETRY COUNTER 2C on key reference 80. */
static unsigned pin_command(struct vcard *card, unsigned char ins, unsigned char p1, unsigned char p2,
                            const unsigned char *data, size_t len)
{
    char a[9], b[9];
    unsigned sw;
    if (p2 != 0x80)
        return 0x6a88;
    if (ins == 0x20 && p1 == 0xff) {
        card->pin_verified = 0;
        return 0x9000;
    }
    if (ins == 0x20 && len == 0) {
        if (card->pin_verified)
            return 0x9000;
        return card->pin_tries ? 0x63c0u | (unsigned)card->pin_tries : 0x6983;
    }
    if (len != (ins == 0x20 ? 8u : 16u) || unpad(data, a) != 0 || (len == 16 && unpad(data + 8, b) != 0))
        return 0x6a80;
    sw = vcard_check_secret(card, a, ins == 0x2c);
    if (sw != 0x9000)
        return sw;
    if (ins == 0x20) {
        card->pin_verified = 1;
    } else {
        strcpy(card->pin, b);
        card->pin_tries = card->pin_tries_max;
        vcard_state_save(card);
    }
    return 0x9000;
}

/* Yubico's GET METADATA (INS F7) of the PIN (80) or the PUK (81), as a
 * YubiKey 5.3 or later answers it: 01 algorithm FF, 05 default flag,
 * 06 {total tries, tries left}. The only way a PIV card tells the PUK's
 * counter without spending a try. */
static void get_metadata(struct vcard *card, unsigned char p2, unsigned char *out, size_t *out_len)
{
    int puk = p2 == 0x81;
    unsigned char md[] = {0x01, 0x01, 0xff, 0x05, 0x01, 0x00, 0x06, 0x02, 0, 0};
    if (p2 != 0x80 && !puk) {
        vcard_reply_sw(0x6a88, out, out_len);
        return;
    }
    md[5] = (unsigned char)(strcmp(puk ? card->puk : card->pin, puk ? "12345678" : "123456") == 0);
    md[8] = (unsigned char)(puk ? card->puk_tries_max : card->pin_tries_max);
    md[9] = (unsigned char)(puk ? card->puk_tries : card->pin_tries);
    vcard_reply_data(card, md, sizeof md, out, out_len);
}

/* SP 800-73-4 Part 2, 3.2.4 GENERAL AUTHENTICATE: 7C { 82 00, 81 challenge } -> 7C { 82 response } */
static void general_authenticate(struct vcard *card, unsigned char alg, unsigned char ref,
                                 const unsigned char *data, size_t len, unsigned char *out, size_t *out_len)
{
    struct vcard_slot *s = NULL;
    const unsigned char *chal = NULL;
    size_t chal_len = 0, i = 2, n = 0;
    unsigned char sig[1024], buf[1100];
    size_t sig_len = 0;
    int rc;

    for (int k = 0; k < VCARD_SLOTS; k++)
        if (card->slots[k].key_ref == ref && card->slots[k].has_key)
            s = &card->slots[k];
    if (!s) {
        vcard_reply_sw(0x6a82, out, out_len);
        return;
    }
    if ((ref == 0x9a || ref == 0x9c) && !card->pin_verified) {
        vcard_reply_sw(0x6982, out, out_len);
        return;
    }
    /* Parse 7C len { ... 81 len challenge ... } with 1-3 byte lengths. */
    if (len < 2 || data[0] != 0x7c) {
        vcard_reply_sw(0x6a80, out, out_len);
        return;
    }
    if (data[1] & 0x80)
        i = 2 + (data[1] & 0x7f);
    while (i + 2 <= len) {
        unsigned char t = data[i];
        size_t l = data[i + 1], skip = 2;
        if (l == 0x81 && i + 2 < len)
            l = data[i + 2], skip = 3;
        else if (l == 0x82 && i + 3 < len)
            l = (size_t)(data[i + 2] << 8 | data[i + 3]), skip = 4;
        if (i + skip + l > len)
            break;
        if (t == 0x81)
            chal = data + i + skip, chal_len = l;
        i += skip + l;
    }
    if (!chal) {
        vcard_reply_sw(0x6a80, out, out_len);
        return;
    }
    if (alg == 0x07 && mbedtls_pk_get_type(&s->key) == MBEDTLS_PK_RSA && chal_len == 256) {
        rc = mbedtls_rsa_private(mbedtls_pk_rsa(s->key), vcard_rng, NULL, chal, sig);
        sig_len = 256;
    } else if ((alg == 0x11 || alg == 0x14) && mbedtls_pk_get_type(&s->key) == MBEDTLS_PK_ECKEY &&
               mbedtls_pk_get_bitlen(&s->key) == (alg == 0x11 ? 256u : 384u)) {
        /* The challenge is the hash already; the digest type only steers
         * mbedTLS's deterministic nonce (RFC 6979), which needs one. */
        rc = mbedtls_pk_sign(&s->key, chal_len > 32 ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA256, chal, chal_len,
                             sig, &sig_len, vcard_rng, NULL);
    } else {
        vcard_reply_sw(0x6a80, out, out_len);
        return;
    }
    if (rc != 0) {
        vcard_reply_sw(0x6f00, out, out_len);
        return;
    }
    if (ref == 0x9c)
        card->pin_verified = 0; /* PIN-always policy for the signature key */
    buf[n++] = 0x7c;
    n += vcard_put_len(buf + n, 1 + (sig_len < 0x80 ? 1 : sig_len < 0x100 ? 2 : 3) + sig_len);
    buf[n++] = 0x82;
    n += vcard_put_len(buf + n, sig_len);
    memcpy(buf + n, sig, sig_len);
    vcard_reply_data(card, buf, n + sig_len, out, out_len);
}

void vcard_piv_command(struct vcard *card, unsigned char ins, unsigned char p1, unsigned char p2,
                       const unsigned char *data, size_t lc, unsigned char *out, size_t *out_len)
{
    switch (ins) {
    case 0xa4:
        if (p1 != 0x04)
            vcard_reply_sw(0x6a86, out, out_len);
        else
            select_app(card, data, lc, out, out_len);
        return;
    }
    if (!card->selected) {
        vcard_reply_sw(0x6985, out, out_len);
        return;
    }
    switch (ins) {
    case 0xcb:
        if (p1 != 0x3f || p2 != 0xff)
            vcard_reply_sw(0x6a86, out, out_len);
        else
            get_data(card, data, lc, out, out_len);
        return;
    case 0x20:
    case 0x24:
    case 0x2c:
        vcard_reply_sw(pin_command(card, ins, p1, p2, data, lc), out, out_len);
        return;
    case 0x87:
        general_authenticate(card, p1, p2, data, lc, out, out_len);
        return;
    case 0xf7:
        get_metadata(card, p2, out, out_len);
        return;
    default:
        vcard_reply_sw(0x6d00, out, out_len);
    }
}
