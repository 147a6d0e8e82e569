/*
 * The OpenPGP card driver (Functional Specification of the OpenPGP
 * application on ISO smart card operating systems, version 3.4): the
 * application identifier as the token's identity, the cardholder
 * certificate of the authentication key, PW1 and its Resetting Code, and
 * signing with INTERNAL AUTHENTICATE. Sections cited as "OpenPGP 3.4 x.y".
 *
 * Only the authentication key is used: it is the one meant for logging in
 * (OpenPGP 3.4 7.2.13), and it needs PW1 in mode 82 only.
 */
#include "token/apdu.h"
#include "token/tlv.h"
#include "token/token.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/secret.h"
#include "x509/sigenc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OpenPGP 3.4 4.2.1: RID D2 76 00 01 24 and PIX application 01. The full
 * AID (DO 4F, 16 bytes) goes on with version (2), manufacturer (2), serial
 * number (4) and RFU (2). */
static const unsigned char openpgp_aid[] = {0xd2, 0x76, 0x00, 0x01, 0x24, 0x01};
#define AID_LEN 16
#define AID_MANUFACTURER 8

/* OpenPGP 3.4 7.2.2: PW1 references (81 for PSO:CDS, 82 for the others). */
#define PW1_CDS 0x81
#define PW1_OTHER 0x82
#define PW_MAX 127

/* OpenPGP 3.4 4.4.1, DO C4: the PW status bytes. */
enum { C4_PW1_VALIDITY, C4_PW1_MAX, C4_RC_MAX, C4_PW3_MAX, C4_PW1_TRIES, C4_RC_TRIES, C4_PW3_TRIES, C4_LEN };

/*
 * GET DATA of a simple or constructed DO (OpenPGP 3.4 7.2.6: P1-P2 is the
 * tag). Returns UKEY_OK with *len set, TOKEN_NOT_FOUND for a missing DO
 * (6A88 / 6A82), or the error of the status word.
 */
static ukey_err get_data(struct card *card, unsigned tag, unsigned char *buf, size_t cap, size_t *len)
{
    struct apdu cmd = {0x00, 0xca, (unsigned char)(tag >> 8), (unsigned char)tag, NULL, 0, 0};
    unsigned sw;
    ukey_err e = apdu_run(card, &cmd, buf, cap, len, &sw);
    if (e != UKEY_OK)
        return e;
    if (sw == 0x6a88 || sw == 0x6a82)
        return UKEY_ERR_TOKEN_NOT_FOUND;
    return sw == SW_OK ? UKEY_OK : iso7816_error(sw);
}

static ukey_err openpgp_match(struct card *card)
{
    /* OpenPGP 3.4 7.2.1 SELECT by the RID+PIX prefix of the AID. */
    struct apdu cmd = {0x00, 0xa4, 0x04, 0x00, openpgp_aid, sizeof openpgp_aid, 0};
    unsigned char resp[256];
    size_t len;
    unsigned sw;
    ukey_err e = apdu_run(card, &cmd, resp, sizeof resp, &len, &sw);
    if (e != UKEY_OK)
        return e;
    return sw == SW_OK ? UKEY_OK : UKEY_ERR_TOKEN_NOT_SUPPORTED;
}

/* The token id: "openpgp-" and the AID's manufacturer and serial number in
 * hex (OpenPGP 3.4 4.2.1), the same in any reader; the serial as GnuPG
 * prints it (the 4 serial number bytes, upper-case hex). */
static ukey_err read_identity(struct card *card, struct token *t)
{
    unsigned char aid[64];
    size_t len;
    ukey_err e = get_data(card, 0x4f, aid, sizeof aid, &len);
    if (e != UKEY_OK)
        return e == UKEY_ERR_TOKEN_NOT_FOUND ? UKEY_ERR_TOKEN_NOT_SUPPORTED : e;
    if (len != AID_LEN || memcmp(aid, openpgp_aid, sizeof openpgp_aid) != 0) {
        log_warn("openpgp: the application identifier is malformed (%zu bytes)", len);
        return UKEY_ERR_CARD_DATA_INVALID;
    }
    strcpy(t->id, "openpgp-");
    hex_encode(t->id + 8, aid + AID_MANUFACTURER, 6, 0);
    hex_encode(t->serial, aid + AID_MANUFACTURER + 2, 4, 1);
    return UKEY_OK;
}

static ukey_err openpgp_identify(struct card *card, char id[TOKEN_ID_LEN])
{
    struct token t;
    ukey_err e;
    memset(&t, 0, sizeof t);
    if ((e = read_identity(card, &t)) == UKEY_OK)
        memcpy(id, t.id, TOKEN_ID_LEN);
    return e;
}

/* 1 if the algorithm attributes (OpenPGP 3.4 4.4.3.9) name a key this
 * driver signs with: RSA 2048, ECDSA on P-256 or P-384. */
static int usable_key(const struct tlv *attr)
{
    /* OpenPGP 3.4 4.4.3.10, Table: the curve OIDs (value only) */
    static const unsigned char p256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    static const unsigned char p384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
    const unsigned char *v = attr->value;
    size_t n = attr->len;
    if (n >= 3 && v[0] == 0x01)
        return (v[1] << 8 | v[2]) == 2048;
    if (n < 1 || v[0] != 0x13)
        return 0;
    /* An optional trailing FF says the public key is imported with the private one. */
    if (n > 1 && v[n - 1] == 0xff)
        n--;
    return (n - 1 == sizeof p256 && memcmp(v + 1, p256, sizeof p256) == 0) ||
           (n - 1 == sizeof p384 && memcmp(v + 1, p384, sizeof p384) == 0);
}

/*
 * The authentication key's state from the Application Related Data (DO 6E,
 * OpenPGP 3.4 4.4.3.1): 1 if a usable key is there (algorithm attributes C3
 * we sign with, and a fingerprint in C5 that is not all zero), 0 if not.
 * CARD_DATA_INVALID for a malformed 6E.
 */
static ukey_err read_auth_key(struct card *card, int *usable)
{
    unsigned char buf[2048];
    const unsigned char *dd;
    size_t len, dd_len;
    struct tlv outer, disc, attr, fpr;
    ukey_err e;

    *usable = 0;
    if ((e = get_data(card, 0x6e, buf, sizeof buf, &len)) != UKEY_OK)
        return e == UKEY_ERR_TOKEN_NOT_FOUND ? UKEY_ERR_CARD_DATA_INVALID : e;
    /* 6E { 4F, 5F52, 7F74, 7F66, 73 { C0 .. C6, CD, DE .. } }; cards differ in
     * whether the answer carries the 6E wrapper. */
    dd = buf, dd_len = len;
    if (tlv_find(buf, len, 0x6e, &outer) == 0)
        dd = outer.value, dd_len = outer.len;
    if (tlv_find(dd, dd_len, 0x73, &disc) != 0) {
        log_warn("openpgp: application related data without discretionary data objects");
        return UKEY_ERR_CARD_DATA_INVALID;
    }
    if (tlv_find(disc.value, disc.len, 0xc3, &attr) != 0 || tlv_find(disc.value, disc.len, 0xc5, &fpr) != 0 ||
        fpr.len < 60) {
        log_warn("openpgp: no algorithm attributes or fingerprints for the authentication key");
        return UKEY_ERR_CARD_DATA_INVALID;
    }
    /* C5: SIG, DEC, AUT fingerprints, 20 bytes each; zeros for no key. */
    for (size_t i = 40; i < 60; i++)
        if (fpr.value[i]) {
            *usable = usable_key(&attr);
            break;
        }
    return UKEY_OK;
}

/*
 * Reads the authentication key's cardholder certificate (DO 7F21) into a
 * malloc'd buffer; *der = NULL when the card holds none. OpenPGP 3.4
 * 7.2.5: SELECT DATA picks the occurrence (AUT is the first, 00) before
 * GET DATA; version 2 cards have one certificate and no SELECT DATA.
 */
static ukey_err read_auth_cert(struct card *card, unsigned char **der, size_t *der_len)
{
    /* 60 { 5C 7F21 }; some 3.x cards want the bare 5C (then they answer 6A80). */
    static const unsigned char sel[] = {0x60, 0x04, 0x5c, 0x02, 0x7f, 0x21};
    struct apdu cmd = {0x00, 0xa5, 0x00, 0x04, sel, sizeof sel, -1};
    unsigned char resp[64], *buf;
    const unsigned char *p;
    struct tlv cert, wrapped;
    size_t len;
    unsigned sw;
    ukey_err e;

    *der = NULL;
    *der_len = 0;
    if ((e = apdu_run(card, &cmd, resp, sizeof resp, &len, &sw)) != UKEY_OK)
        return e;
    if (sw == 0x6a80) {
        cmd.data = sel + 2, cmd.len = sizeof sel - 2;
        if ((e = apdu_run(card, &cmd, resp, sizeof resp, &len, &sw)) != UKEY_OK)
            return e;
    }
    if (sw != SW_OK)
        log_debug("openpgp: SELECT DATA answered %04x (%s); reading the only certificate", sw, iso7816_sw_text(sw));
    if (!(buf = malloc(APDU_MAX_RESPONSE)))
        return UKEY_ERR_OUT_OF_MEMORY;
    e = get_data(card, 0x7f21, buf, APDU_MAX_RESPONSE, &len);
    if (e == UKEY_ERR_TOKEN_NOT_FOUND || (e == UKEY_OK && len == 0)) {
        free(buf);
        return UKEY_OK;
    }
    p = buf;
    /* The content of 7F21, or (some cards) 7F21 itself around it. */
    if (e == UKEY_OK && len > 2 && buf[0] == 0x7f && buf[1] == 0x21) {
        if (tlv_next(&p, buf + len, &wrapped) != 0 || p != buf + len)
            e = UKEY_ERR_CARD_DATA_INVALID;
        else if (wrapped.len == 0) {
            free(buf);
            return UKEY_OK;
        } else
            p = wrapped.value, len = wrapped.len;
    }
    /* One DER SEQUENCE and nothing after it. */
    if (e == UKEY_OK) {
        const unsigned char *q = p;
        if (tlv_next(&q, p + len, &cert) != 0 || cert.tag != 0x30 || q != p + len)
            e = UKEY_ERR_CARD_DATA_INVALID;
    }
    if (e == UKEY_OK && !(*der = malloc(len)))
        e = UKEY_ERR_OUT_OF_MEMORY;
    if (e == UKEY_OK) {
        memcpy(*der, p, len);
        *der_len = len;
    } else if (e == UKEY_ERR_CARD_DATA_INVALID) {
        log_warn("openpgp: the cardholder certificate is malformed");
    }
    free(buf);
    return e;
}

static ukey_err openpgp_read(struct card *card, struct token *t)
{
    struct token_cert *tc = &t->certs[0];
    int usable;
    ukey_err e;

    if ((e = read_identity(card, t)) != UKEY_OK || (e = read_auth_key(card, &usable)) != UKEY_OK)
        return e;
    snprintf(t->label, sizeof t->label, "OpenPGP");
    if ((e = read_auth_cert(card, &tc->der, &tc->der_len)) != UKEY_OK || !tc->der)
        return e;
    snprintf(tc->id, sizeof tc->id, "auth");
    tc->slot = "Authentication key";
    /* A certificate without a key we can sign with is listed, not offered for login. */
    tc->auth = usable;
    if (!usable)
        log_info("openpgp: no usable authentication key (RSA 2048, ECDSA P-256/P-384) behind the certificate");
    t->n_certs = 1;
    return UKEY_OK;
}

/* DO C4, the PW status bytes (OpenPGP 3.4 4.4.1); GET DATA C4 spends no try. */
static ukey_err read_pw_status(struct card *card, unsigned char c4[C4_LEN])
{
    unsigned char buf[64];
    size_t len;
    ukey_err e = get_data(card, 0xc4, buf, sizeof buf, &len);
    if (e != UKEY_OK)
        return e == UKEY_ERR_TOKEN_NOT_FOUND ? UKEY_ERR_CARD_DATA_INVALID : e;
    /* Some cards answer with the C4 wrapper. */
    if (len == C4_LEN + 2 && buf[0] == 0xc4 && buf[1] == C4_LEN)
        memmove(buf, buf + 2, C4_LEN), len = C4_LEN;
    if (len != C4_LEN) {
        log_warn("openpgp: PW status bytes of %zu bytes", len);
        return UKEY_ERR_CARD_DATA_INVALID;
    }
    memcpy(c4, buf, C4_LEN);
    return UKEY_OK;
}

static ukey_err openpgp_pin_status(struct card *card, struct token_pin *pin)
{
    unsigned char c4[C4_LEN];
    ukey_err e;

    pin->retries_left = -1;
    pin->blocked = 0;
    /* OpenPGP 3.4 4.3.2: PW1 is at least 6 characters, any bytes (UTF-8). */
    pin->min_len = 6;
    pin->max_len = PW_MAX;
    pin->digits_only = 0;
    if ((e = read_pw_status(card, c4)) != UKEY_OK)
        return e;
    /* Bit 8 of the length byte is the PIN block 2 format flag (3.3 and later). */
    if ((c4[C4_PW1_MAX] & 0x7f) < pin->min_len) {
        log_warn("openpgp: PW1 maximum length %u", c4[C4_PW1_MAX] & 0x7f);
        return UKEY_ERR_CARD_DATA_INVALID;
    }
    pin->max_len = c4[C4_PW1_MAX] & 0x7fu;
    pin->retries_left = c4[C4_PW1_TRIES];
    pin->blocked = c4[C4_PW1_TRIES] == 0;
    /* The Resetting Code's counter is 0 also when no Resetting Code is set
     * (4.4.1): either way it cannot unblock PW1. */
    pin->puk_retries_left = c4[C4_RC_TRIES];
    pin->puk_blocked = c4[C4_RC_TRIES] == 0;
    pin->puk_untold = 0;
    return UKEY_OK;
}

/* After a refused PIN command: the counter of PW1 (or of the Resetting
 * Code) from C4, since many cards answer a wrong PIN with 6982 and no count. */
static ukey_err pin_failed(struct card *card, unsigned sw, int rc, struct token_pin *pin)
{
    unsigned char c4[C4_LEN];
    int *left = rc ? &pin->puk_retries_left : &pin->retries_left;
    ukey_err blocked = rc ? UKEY_ERR_PUK_BLOCKED : UKEY_ERR_PIN_BLOCKED;

    if (sw == 0x6983)
        *left = 0;
    else if ((sw & 0xfff0) == 0x63c0)
        *left = (int)(sw & 0x0f);
    else if (sw == 0x6982 && read_pw_status(card, c4) == UKEY_OK)
        *left = c4[rc ? C4_RC_TRIES : C4_PW1_TRIES];
    else if (sw == 0x6a80 || sw == 0x6700)
        return UKEY_ERR_PIN_FORMAT;
    else if (sw != 0x6982) {
        log_warn("openpgp: PIN command answered %04x (%s)", sw, iso7816_sw_text(sw));
        return iso7816_error(sw);
    }
    if (rc && *left >= 0)
        pin->puk_blocked = *left == 0;
    if (*left == 0)
        return blocked;
    return rc ? UKEY_ERR_PUK_INCORRECT : UKEY_ERR_PIN_INCORRECT;
}

static ukey_err openpgp_pin_op(struct card *card, enum token_pin_op op, const char *a, const char *b,
                               struct token_pin *pin)
{
    /* OpenPGP 3.4 7.2.2 VERIFY (PW1 mode 82: INTERNAL AUTHENTICATE), 7.2.3
     * CHANGE REFERENCE DATA (PW1 is 81), 7.2.4 RESET RETRY COUNTER with the
     * Resetting Code (P1 00): the data is the old value || the new one. */
    static const unsigned char ins[] = {0x20, 0x24, 0x2c};
    unsigned char data[2 * PW_MAX], resp[64];
    size_t na = a ? strlen(a) : 0, nb = b ? strlen(b) : 0, len;
    struct apdu cmd = {0x00, ins[op], 0x00, op == TOKEN_PIN_VERIFY ? PW1_OTHER : PW1_CDS, data, na + nb, -1};
    unsigned sw;
    ukey_err e;

    if (!a)
        return UKEY_ERR_PIN_REQUIRED; /* no PIN-pad entry for OpenPGP yet: pin_status never says pin_pad */
    if (na == 0 || na > PW_MAX || nb > PW_MAX || (op != TOKEN_PIN_VERIFY && nb == 0))
        return UKEY_ERR_PIN_FORMAT;
    memcpy(data, a, na);
    if (nb)
        memcpy(data + na, b, nb);
    e = apdu_run(card, &cmd, resp, sizeof resp, &len, &sw);
    secret_wipe(data, sizeof data);
    if (e != UKEY_OK)
        return e;
    return sw == SW_OK ? UKEY_OK : pin_failed(card, sw, op == TOKEN_PIN_UNBLOCK, pin);
}

static ukey_err openpgp_sign(struct card *card, const char *cert_id, enum token_key kind, int pss,
                             const unsigned char *digest, size_t digest_len, unsigned char *out, size_t *out_len)
{
    /* OpenPGP 3.4 7.2.13 INTERNAL AUTHENTICATE with the authentication key:
     * RSA gets the DigestInfo and pads it itself (PKCS#1 v1.5 only); ECDSA
     * gets the digest and answers r || s. */
    unsigned char in[SIGENC_DIGEST_INFO_MAX], resp[512];
    struct apdu cmd = {0x00, 0x88, 0x00, 0x00, in, 0, 0};
    size_t n = kind == TOKEN_KEY_P384 ? 48 : 32, got;
    unsigned sw;
    int der_len;
    ukey_err e;

    if ((digest_len != 32 && digest_len != 48) || strcmp(cert_id, "auth") != 0)
        return UKEY_ERR_CARD_ERROR;
    if (kind == TOKEN_KEY_RSA2048) {
        if (pss)
            return UKEY_ERR_TOKEN_NOT_SUPPORTED;
        cmd.len = sigenc_digest_info(digest_len == 48 ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA256, digest, in);
    } else {
        memcpy(in, digest, digest_len);
        cmd.len = digest_len;
    }
    if ((e = apdu_run(card, &cmd, resp, sizeof resp, &got, &sw)) != UKEY_OK)
        return e;
    if (sw == 0x6982)
        return UKEY_ERR_PIN_REQUIRED; /* not verified: never sign without the PIN */
    if (sw != SW_OK) {
        log_warn("openpgp: INTERNAL AUTHENTICATE answered %04x (%s)", sw, iso7816_sw_text(sw));
        return iso7816_error(sw);
    }
    if (kind == TOKEN_KEY_RSA2048) {
        if (got != 256 || got > *out_len)
            return UKEY_ERR_CARD_DATA_INVALID;
        memcpy(out, resp, got);
        *out_len = got;
        return UKEY_OK;
    }
    if (got != 2 * n || (der_len = sigenc_ecdsa_raw_to_der(resp, n, out, *out_len)) < 0)
        return UKEY_ERR_CARD_DATA_INVALID;
    *out_len = (size_t)der_len;
    return UKEY_OK;
}

/* OpenPGP 3.4 7.2.2: VERIFY with P1=FF and no data resets PW1's verified
 * state. Older cards refuse it; the caller resets the card. */
static void openpgp_logout(struct card *card) { iso7816_logout(card, PW1_OTHER); }

const struct token_driver openpgp_driver = {
    .name = "OpenPGP",
    .match = openpgp_match,
    .identify = openpgp_identify,
    .read = openpgp_read,
    .pin_status = openpgp_pin_status,
    .pin_op = openpgp_pin_op,
    .sign = openpgp_sign,
    .logout = openpgp_logout,
};
