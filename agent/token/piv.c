/*
 * The PIV card driver (NIST SP 800-73-4): application selection, the CHUID
 * and certificate objects, the application PIN (key reference 80) and its
 * PUK (81), signing with GENERAL AUTHENTICATE.
 */
#include "token/apdu.h"
#include "token/pinpad.h"
#include "token/tlv.h"
#include "token/token.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/rng.h"
#include "util/secret.h"
#include "x509/sigenc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SP 800-73-4 Part 1, 2.2: the PIV application identifier (with version). */
static const unsigned char piv_aid[] = {0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00};

#define PIV_PIN_REF 0x80
#define PIV_PUK_REF 0x81
#define PIV_PIN_LEN 8

/* SP 800-73-4 Part 1, Table 3: the certificate objects and their key references. */
static const struct {
    const char *id;
    unsigned tag;
    const char *slot;
    int auth, pin_free;
} piv_slots[] = {
    {"9a", 0x5fc105, "PIV Authentication", 1, 0},
    {"9c", 0x5fc10a, "Digital Signature", 0, 0},
    {"9d", 0x5fc10b, "Key Management", 0, 0},
    /* SP 800-73-4 Part 1, 3.2: the card authentication key needs no PIN. */
    {"9e", 0x5fc101, "Card Authentication", 0, 1},
};

static ukey_err piv_match(struct card *card)
{
    /* SP 800-73-4 Part 2, 3.1.1 SELECT */
    struct apdu cmd = {0x00, 0xa4, 0x04, 0x00, piv_aid, sizeof piv_aid, 0};
    unsigned char resp[512];
    size_t len;
    unsigned sw;
    ukey_err e = apdu_run(card, &cmd, resp, sizeof resp, &len, &sw);
    if (e != UKEY_OK)
        return e;
    return sw == SW_OK ? UKEY_OK : UKEY_ERR_TOKEN_NOT_SUPPORTED;
}

/*
 * GET DATA of the object `tag` (SP 800-73-4 Part 2, 3.1.2). On success
 * *value and *len point into `buf` at the content of the 53 wrapper. Returns
 * UKEY_OK, TOKEN_NOT_FOUND for a missing object (6A82), CARD_DATA_INVALID
 * for a malformed one.
 */
static ukey_err get_data(struct card *card, unsigned tag, unsigned char *buf, size_t cap,
                         const unsigned char **value, size_t *len)
{
    unsigned char tagref[5] = {0x5c, 0x03, (unsigned char)(tag >> 16), (unsigned char)(tag >> 8),
                               (unsigned char)tag};
    struct apdu cmd = {0x00, 0xcb, 0x3f, 0xff, tagref, sizeof tagref, 0};
    struct tlv outer;
    size_t got;
    unsigned sw;
    ukey_err e = apdu_run(card, &cmd, buf, cap, &got, &sw);
    if (e != UKEY_OK)
        return e;
    if (sw == 0x6a82)
        return UKEY_ERR_TOKEN_NOT_FOUND;
    if (sw != SW_OK)
        return iso7816_error(sw);
    if (tlv_find(buf, got, 0x53, &outer) != 0) {
        log_warn("piv: object %06x is malformed", tag);
        return UKEY_ERR_CARD_DATA_INVALID;
    }
    *value = outer.value;
    *len = outer.len;
    return UKEY_OK;
}

/* The token id: "piv-" and the CHUID's GUID (SP 800-73-4 Part 1, 3.1.2),
 * the same in any reader; cards without a GUID fall back to the FASC-N. */
static ukey_err read_identity(struct card *card, struct token *t)
{
    unsigned char buf[1024];
    const unsigned char *chuid = NULL; /* set with UKEY_OK (gcc -O3 cannot tell) */
    size_t len = 0;
    struct tlv guid;
    ukey_err e = get_data(card, 0x5fc102, buf, sizeof buf, &chuid, &len);
    if (e != UKEY_OK)
        return e == UKEY_ERR_TOKEN_NOT_FOUND ? UKEY_ERR_TOKEN_NOT_SUPPORTED : e;
    if ((tlv_find(chuid, len, 0x34, &guid) != 0 || guid.len != 16) &&
        (tlv_find(chuid, len, 0x30, &guid) != 0 || guid.len == 0 || guid.len > 25))
        return UKEY_ERR_CARD_DATA_INVALID;
    strcpy(t->id, "piv-");
    hex_encode(t->id + 4, guid.value, guid.len < 16 ? guid.len : 16, 0);
    snprintf(t->serial, sizeof t->serial, "%s", t->id + 4);
    return UKEY_OK;
}

static ukey_err piv_identify(struct card *card, char id[TOKEN_ID_LEN])
{
    struct token t;
    ukey_err e;
    memset(&t, 0, sizeof t);
    if ((e = read_identity(card, &t)) == UKEY_OK)
        memcpy(id, t.id, TOKEN_ID_LEN);
    return e;
}

static ukey_err piv_read(struct card *card, struct token *t)
{
    ukey_err e;
    if ((e = read_identity(card, t)) != UKEY_OK)
        return e;
    snprintf(t->label, sizeof t->label, "PIV");
    for (size_t i = 0; i < sizeof piv_slots / sizeof piv_slots[0]; i++) {
        unsigned char *buf = malloc(APDU_MAX_RESPONSE);
        const unsigned char *obj = NULL; /* set with UKEY_OK (gcc -O3 cannot tell) */
        size_t len = 0;
        struct tlv cert, info;
        if (!buf)
            return UKEY_ERR_OUT_OF_MEMORY;
        e = get_data(card, piv_slots[i].tag, buf, APDU_MAX_RESPONSE, &obj, &len);
        if (e == UKEY_ERR_TOKEN_NOT_FOUND) {
            free(buf);
            continue;
        }
        if (e == UKEY_OK && tlv_find(obj, len, 0x70, &cert) != 0)
            e = UKEY_ERR_CARD_DATA_INVALID;
        /* 71 CertInfo bit 0: gzip-compressed certificate, which we do not read. */
        if (e == UKEY_OK && tlv_find(obj, len, 0x71, &info) == 0 && info.len == 1 && (info.value[0] & 1)) {
            log_info("piv: slot %s holds a compressed certificate; skipped", piv_slots[i].id);
            free(buf);
            continue;
        }
        if (e == UKEY_OK) {
            struct token_cert *tc = &t->certs[t->n_certs];
            if (!(tc->der = malloc(cert.len)))
                e = UKEY_ERR_OUT_OF_MEMORY;
            else {
                memcpy(tc->der, cert.value, cert.len);
                tc->der_len = cert.len;
                snprintf(tc->id, sizeof tc->id, "%s", piv_slots[i].id);
                tc->slot = piv_slots[i].slot;
                tc->auth = piv_slots[i].auth;
                tc->pin_free = piv_slots[i].pin_free;
                t->n_certs++;
            }
        }
        free(buf);
        if (e != UKEY_OK)
            return e;
    }
    return UKEY_OK;
}

/*
 * The PUK's counter. SP 800-73-4 defines no way to read it (VERIFY takes
 * no key reference 81, RESET RETRY COUNTER has no empty form), so cards
 * that tell it do so through Yubico's GET METADATA (INS F7, P2 = the key
 * reference; YubiKey 5.3 and later): 01 algorithm, 05 default flag,
 * 06 {total, remaining}. Any other answer leaves the count untold.
 */
static ukey_err read_puk_counter(struct card *card, struct token_pin *pin)
{
    struct apdu cmd = {0x00, 0xf7, 0x00, PIV_PUK_REF, NULL, 0, 0};
    unsigned char resp[64];
    struct tlv tries;
    size_t len;
    unsigned sw;
    ukey_err e = apdu_run(card, &cmd, resp, sizeof resp, &len, &sw);

    pin->puk_retries_left = -1;
    pin->puk_blocked = 0;
    pin->puk_untold = 1;
    if (e != UKEY_OK)
        return e;
    if (sw != SW_OK || tlv_find(resp, len, 0x06, &tries) != 0 || tries.len != 2)
        return UKEY_OK;
    pin->puk_retries_left = tries.value[1];
    pin->puk_blocked = tries.value[1] == 0;
    pin->puk_untold = 0;
    return UKEY_OK;
}

/* Reads the PIN's retry counter with an empty VERIFY (SP 800-73-4 Part 2,
 * 3.2.1: no data field = status only, no try spent). */
static ukey_err piv_pin_tries(struct card *card, struct token_pin *pin)
{
    struct apdu cmd = {0x00, 0x20, 0x00, PIV_PIN_REF, NULL, 0, -1};
    unsigned char resp[64];
    size_t len;
    unsigned sw;
    ukey_err e;

    pin->retries_left = -1;
    pin->blocked = 0;
    pin->min_len = 6;
    pin->max_len = 8;
    pin->digits_only = 1;
    if ((e = card_pin_pad(card, &pin->pin_pad)) != UKEY_OK)
        return e;
    if ((e = apdu_run(card, &cmd, resp, sizeof resp, &len, &sw)) != UKEY_OK)
        return e;
    if ((sw & 0xfff0) == 0x63c0)
        pin->retries_left = (int)(sw & 0x0f);
    else if (sw == 0x6983)
        pin->blocked = 1, pin->retries_left = 0;
    /* 9000: already verified by someone, count unknown; others: unknown */
    return UKEY_OK;
}

/* The PIN's counter, then the PUK's. */
static ukey_err piv_pin_status(struct card *card, struct token_pin *pin)
{
    ukey_err e = piv_pin_tries(card, pin);
    return e == UKEY_OK ? read_puk_counter(card, pin) : e;
}

/* PIV reference data: the value padded with FF to 8 bytes (SP 800-73-4 Part 2, 2.4.3). */
static void pad_pin(unsigned char out[PIV_PIN_LEN], const char *value)
{
    size_t n = strlen(value);
    memset(out, 0xff, PIV_PIN_LEN);
    memcpy(out, value, n > PIV_PIN_LEN ? PIV_PIN_LEN : n);
}

/* What the card answered to a PIN command (`puk`: RESET RETRY COUNTER,
 * whose counter is the PUK's), for the keyboard and the pad alike. */
static ukey_err pin_result(unsigned sw, int puk, struct token_pin *pin)
{
    int *left = puk ? &pin->puk_retries_left : &pin->retries_left;
    if (sw == SW_OK)
        return UKEY_OK;
    if ((sw & 0xfff0) == 0x63c0 || sw == 0x6983) {
        *left = sw == 0x6983 ? 0 : (int)(sw & 0x0f);
        if (puk)
            pin->puk_blocked = *left == 0, pin->puk_untold = 0;
        if (*left == 0)
            return puk ? UKEY_ERR_PUK_BLOCKED : UKEY_ERR_PIN_BLOCKED;
        return puk ? UKEY_ERR_PUK_INCORRECT : UKEY_ERR_PIN_INCORRECT;
    }
    if (sw == 0x6a80)
        return UKEY_ERR_PIN_FORMAT;
    log_warn("piv: PIN command answered %04x (%s)", sw, iso7816_sw_text(sw));
    return iso7816_error(sw);
}

/* VERIFY of the application PIN typed on the reader's keypad: the reader
 * fills the same FF-padded 8-byte block the keyboard path sends. */
static ukey_err verify_on_pad(struct card *card, struct token_pin *pin)
{
    static const struct pinpad_params verify = {
        {0x00, 0x20, 0x00, PIV_PIN_REF}, PIV_PIN_LEN, PINPAD_ASCII, 0xff, 6, 8,
        PINPAD_TIMEOUT_S, PINPAD_LANG_ZH_CN, PINPAD_VALIDATE_OK_KEY};
    unsigned sw;
    ukey_err e = card_verify_pin_pad(card, &verify, &sw);

    if (e != UKEY_OK)
        return e;
    return pin_result(sw, 0, pin);
}

static ukey_err piv_pin_op(struct card *card, enum token_pin_op op, const char *a, const char *b,
                           struct token_pin *pin)
{
    /* VERIFY 20, CHANGE REFERENCE DATA 24, RESET RETRY COUNTER 2C (SP 800-73-4 Part 2, 3.2.1-3.2.3) */
    static const unsigned char ins[] = {0x20, 0x24, 0x2c};
    unsigned char data[2 * PIV_PIN_LEN], resp[64];
    struct apdu cmd = {0x00, ins[op], 0x00, PIV_PIN_REF, data, op == TOKEN_PIN_VERIFY ? 8 : 16, -1};
    size_t len;
    unsigned sw;
    ukey_err e;

    if (!a)
        return op == TOKEN_PIN_VERIFY ? verify_on_pad(card, pin) : UKEY_ERR_BAD_REQUEST;
    pad_pin(data, a);
    if (b)
        pad_pin(data + PIV_PIN_LEN, b);
    e = apdu_run(card, &cmd, resp, sizeof resp, &len, &sw);
    secret_wipe(data, sizeof data);
    if (e != UKEY_OK)
        return e;
    return pin_result(sw, op == TOKEN_PIN_UNBLOCK, pin);
}

/* Size of a BER length field for `len`, and writing it (ISO 7816-4 5.2). */
static size_t ber_len_size(size_t len) { return len < 0x80 ? 1 : len < 0x100 ? 2 : 3; }

static size_t put_ber_len(unsigned char *out, size_t len)
{
    size_t n = ber_len_size(len);
    if (n == 1)
        out[0] = (unsigned char)len;
    else if (n == 2)
        out[0] = 0x81, out[1] = (unsigned char)len;
    else
        out[0] = 0x82, out[1] = (unsigned char)(len >> 8), out[2] = (unsigned char)len;
    return n;
}

static ukey_err piv_sign(struct card *card, const char *cert_id, enum token_key kind, int pss,
                         const unsigned char *digest, size_t digest_len, unsigned char *out, size_t *out_len)
{
    /* SP 800-78-4 Table 6-2: algorithm identifiers */
    static const unsigned char alg_ids[] = {0x07, 0x11, 0x14};
    unsigned char data[8 + 512], block[256], *resp;
    struct apdu cmd = {0x00, 0x87, alg_ids[kind], 0, data, 0, 0};
    const unsigned char *in = digest;
    size_t in_len = digest_len;
    mbedtls_md_type_t md = digest_len == 48 ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA256;
    struct tlv outer, sig;
    size_t n = 0, got;
    unsigned sw;
    ukey_err e;

    if ((digest_len != 32 && digest_len != 48) || strlen(cert_id) != 2 || sscanf(cert_id, "%2hhx", &cmd.p2) != 1)
        return UKEY_ERR_CARD_ERROR;
    /* The card computes raw RSA: the padding is ours (SP 800-73-4 Part 2, 3.2.4). */
    if (kind == TOKEN_KEY_RSA2048) {
        if ((pss ? sigenc_pss(md, digest, 2048, rng_random, NULL, block)
                 : sigenc_pkcs1_v15(md, digest, sizeof block, block)) != 0)
            return UKEY_ERR_INTERNAL;
        in = block;
        in_len = sizeof block;
    }
    /* SP 800-73-4 Part 2, 3.2.4: 7C { 82 00 (response wanted), 81 challenge } */
    data[n++] = 0x7c;
    n += put_ber_len(data + n, 2 + 1 + ber_len_size(in_len) + in_len);
    data[n++] = 0x82, data[n++] = 0x00;
    data[n++] = 0x81;
    n += put_ber_len(data + n, in_len);
    memcpy(data + n, in, in_len);
    cmd.len = n + in_len;
    if (!(resp = malloc(1024)))
        return UKEY_ERR_OUT_OF_MEMORY;
    e = apdu_run(card, &cmd, resp, 1024, &got, &sw);
    if (e == UKEY_OK && sw == 0x6982)
        e = UKEY_ERR_PIN_REQUIRED; /* the card is not verified: never sign without the PIN */
    else if (e == UKEY_OK && sw != SW_OK)
        e = iso7816_error(sw);
    else if (e == UKEY_OK && (tlv_find(resp, got, 0x7c, &outer) != 0 ||
                              tlv_find(outer.value, outer.len, 0x82, &sig) != 0 || sig.len > *out_len))
        e = UKEY_ERR_CARD_DATA_INVALID;
    if (e == UKEY_OK) {
        memcpy(out, sig.value, sig.len);
        *out_len = sig.len;
    }
    free(resp);
    return e;
}

/* SP 800-73-4 Part 2, 3.2.1: VERIFY with P1=FF resets the security status. */
static void piv_logout(struct card *card) { iso7816_logout(card, PIV_PIN_REF); }

const struct token_driver piv_driver = {
    .name = "PIV",
    .match = piv_match,
    .identify = piv_identify,
    .read = piv_read,
    .pin_status = piv_pin_status,
    .pin_tries = piv_pin_tries,
    .pin_op = piv_pin_op,
    .sign = piv_sign,
    .logout = piv_logout,
};
