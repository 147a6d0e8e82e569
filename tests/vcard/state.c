/* The virtual card's state file (JSON): profile, PIN, PUK, counters, GUID
 * or serial number, keys, certificates and (OpenPGP) fingerprints. Counters are written back at once, so a restart of the card
 * never resets them. */
#include "vcard.h"

#include <jansson.h>
#include <mbedtls/pem.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct slot_def {
    const char *id;
    unsigned char ref;
    unsigned tag;
};

static const struct slot_def piv_slots[VCARD_SLOTS] = {
    {"9a", 0x9a, 0x5fc105}, {"9c", 0x9c, 0x5fc10a}, {"9d", 0x9d, 0x5fc10b}, {"9e", 0x9e, 0x5fc101},
};

/* OpenPGP 3.4 7.2.5: the cardholder certificate occurrences, in this order. */
static const struct slot_def openpgp_slots[VCARD_SLOTS] = {
    {"aut", 0xa4, 0x7f21}, {"dec", 0xb8, 0x7f21}, {"sig", 0xb6, 0x7f21}, {NULL, 0, 0},
};

static int fail(const char *path, const char *what)
{
    fprintf(stderr, "ukey-vcard: %s: %s\n", path, what);
    return -1;
}

/* PEM certificate text -> DER copy. */
static int pem_cert_to_der(const char *pem, unsigned char **der, size_t *len)
{
    mbedtls_pem_context ctx;
    size_t used;
    int rc;
    mbedtls_pem_init(&ctx);
    rc = mbedtls_pem_read_buffer(&ctx, "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----",
                                 (const unsigned char *)pem, NULL, 0, &used);
    if (rc == 0 && (*der = malloc(ctx.buflen)) != NULL) {
        memcpy(*der, ctx.buf, ctx.buflen);
        *len = ctx.buflen;
    } else {
        rc = -1;
    }
    mbedtls_pem_free(&ctx);
    return rc;
}

static int get_secret(json_t *root, const char *key, char out[VCARD_SECRET_MAX + 1], size_t min, size_t max)
{
    const char *v = json_string_value(json_object_get(root, key));
    if (!v || strlen(v) < min || strlen(v) > max)
        return -1;
    strcpy(out, v);
    return 0;
}

static int get_count(json_t *root, const char *key, int *out)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 15)
        return -1;
    *out = (int)json_integer_value(v);
    return 0;
}

/* Exactly 2n hex digits -> n bytes; 0 or -1. */
static int hex_value(const char *hex, unsigned char *out, size_t n)
{
    if (!hex || strlen(hex) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (sscanf(hex + 2 * i, "%2hhx", &out[i]) != 1)
            return -1;
    return 0;
}

int vcard_state_load(struct vcard *card, const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr), *slots, *fprs;
    const struct slot_def *table = piv_slots;
    const char *guid, *profile;
    int rc = -1, pgp;

    card->state_path = path;
    for (int i = 0; i < VCARD_SLOTS; i++)
        mbedtls_pk_init(&card->slots[i].key);
    if (!root) {
        fprintf(stderr, "ukey-vcard: %s:%d: %s\n", path, jerr.line, jerr.text);
        return -1;
    }
    profile = json_string_value(json_object_get(root, "profile"));
    if (profile && strcmp(profile, "openpgp") == 0) {
        card->profile = VCARD_OPENPGP;
        table = openpgp_slots;
    } else if (profile && strcmp(profile, "piv") != 0) {
        fail(path, "\"profile\" must be \"piv\" or \"openpgp\"");
        goto out;
    }
    pgp = card->profile == VCARD_OPENPGP;
    for (int i = 0; i < VCARD_SLOTS; i++) {
        card->slots[i].id = table[i].id;
        card->slots[i].key_ref = table[i].ref;
        card->slots[i].tag = table[i].tag;
    }
    /* PIV: PIN 6-8, PUK 8. OpenPGP 3.4 4.3: PW1 6 and more, Resetting Code 8 and more. */
    if (get_secret(root, "pin", card->pin, 6, pgp ? VCARD_SECRET_MAX : 8) ||
        get_secret(root, "puk", card->puk, 8, pgp ? VCARD_SECRET_MAX : 8)) {
        fail(path, pgp ? "\"pin\" must be 6-127 bytes and \"puk\" (the Resetting Code) 8-127"
                       : "\"pin\" must be 6-8 characters and \"puk\" 8");
        goto out;
    }
    if (get_count(root, "pin_tries", &card->pin_tries) || get_count(root, "pin_tries_max", &card->pin_tries_max) ||
        get_count(root, "puk_tries", &card->puk_tries) || get_count(root, "puk_tries_max", &card->puk_tries_max)) {
        fail(path, "pin_tries, pin_tries_max, puk_tries, puk_tries_max must be integers 0-15");
        goto out;
    }
    guid = json_string_value(json_object_get(root, pgp ? "serial" : "guid"));
    if (hex_value(guid, pgp ? card->serial : card->guid, pgp ? 4 : 16) != 0) {
        fail(path, pgp ? "\"serial\" must be 8 hex digits" : "\"guid\" must be 32 hex digits");
        goto out;
    }
    slots = json_object_get(root, "slots");
    fprs = json_object_get(root, "fingerprints");
    for (int i = 0; i < VCARD_SLOTS && table[i].id; i++) {
        json_t *s = json_object_get(slots, table[i].id), *fpr = json_object_get(fprs, table[i].id);
        if (fpr && hex_value(json_string_value(fpr), card->slots[i].fpr, 20) != 0) {
            fail(path, "a fingerprint must be 40 hex digits");
            goto out;
        }
        const char *cert = json_string_value(json_object_get(s, "cert"));
        const char *key = json_string_value(json_object_get(s, "key"));
        if (!s)
            continue;
        if (!cert || pem_cert_to_der(cert, &card->slots[i].cert, &card->slots[i].cert_len) != 0) {
            fail(path, "a slot's \"cert\" is not a PEM certificate");
            goto out;
        }
        if (key) {
            if (mbedtls_pk_parse_key(&card->slots[i].key, (const unsigned char *)key, strlen(key) + 1, NULL, 0) != 0) {
                fail(path, "a slot's \"key\" is not a PEM private key");
                goto out;
            }
            card->slots[i].has_key = 1;
        }
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int vcard_state_save(const struct vcard *card)
{
    char tmp[4200];
    json_error_t jerr;
    json_t *root = json_load_file(card->state_path, 0, &jerr);
    int rc;
    if (!root)
        return -1;
    json_object_set_new(root, "pin", json_string(card->pin));
    json_object_set_new(root, "puk", json_string(card->puk));
    json_object_set_new(root, "pin_tries", json_integer(card->pin_tries));
    json_object_set_new(root, "puk_tries", json_integer(card->puk_tries));
    snprintf(tmp, sizeof tmp, "%s.tmp", card->state_path);
    rc = json_dump_file(root, tmp, JSON_INDENT(1));
    json_decref(root);
    if (rc == 0)
        rc = rename(tmp, card->state_path);
    if (rc != 0)
        fprintf(stderr, "ukey-vcard: cannot save %s\n", card->state_path);
    return rc;
}

void vcard_state_free(struct vcard *card)
{
    for (int i = 0; i < VCARD_SLOTS; i++) {
        free(card->slots[i].cert);
        mbedtls_pk_free(&card->slots[i].key);
    }
    free(card->pending);
    card->pending = NULL;
}
