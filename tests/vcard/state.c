/* The virtual card's state file (JSON): PIN, PUK, counters, GUID, keys and
 * certificates. Counters are written back at once, so a restart of the card
 * never resets them. */
#include "vcard.h"

#include <jansson.h>
#include <mbedtls/pem.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *id;
    unsigned char ref;
    unsigned tag;
} slot_table[VCARD_SLOTS] = {
    {"9a", 0x9a, 0x5fc105}, {"9c", 0x9c, 0x5fc10a}, {"9d", 0x9d, 0x5fc10b}, {"9e", 0x9e, 0x5fc101},
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

static int get_secret(json_t *root, const char *key, char out[9], size_t min, size_t max)
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

int vcard_state_load(struct vcard *card, const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr), *slots;
    const char *guid;
    int rc = -1;

    card->state_path = path;
    for (int i = 0; i < VCARD_SLOTS; i++) {
        card->slots[i].id = slot_table[i].id;
        card->slots[i].key_ref = slot_table[i].ref;
        card->slots[i].tag = slot_table[i].tag;
        mbedtls_pk_init(&card->slots[i].key);
    }
    if (!root) {
        fprintf(stderr, "ukey-vcard: %s:%d: %s\n", path, jerr.line, jerr.text);
        return -1;
    }
    if (get_secret(root, "pin", card->pin, 6, 8) || get_secret(root, "puk", card->puk, 8, 8)) {
        fail(path, "\"pin\" must be 6-8 characters and \"puk\" 8");
        goto out;
    }
    if (get_count(root, "pin_tries", &card->pin_tries) || get_count(root, "pin_tries_max", &card->pin_tries_max) ||
        get_count(root, "puk_tries", &card->puk_tries) || get_count(root, "puk_tries_max", &card->puk_tries_max)) {
        fail(path, "pin_tries, pin_tries_max, puk_tries, puk_tries_max must be integers 0-15");
        goto out;
    }
    guid = json_string_value(json_object_get(root, "guid"));
    if (!guid || strlen(guid) != 32) {
        fail(path, "\"guid\" must be 32 hex digits");
        goto out;
    }
    for (int i = 0; i < 16; i++)
        if (sscanf(guid + 2 * i, "%2hhx", &card->guid[i]) != 1) {
            fail(path, "\"guid\" must be 32 hex digits");
            goto out;
        }
    slots = json_object_get(root, "slots");
    for (int i = 0; i < VCARD_SLOTS; i++) {
        json_t *s = json_object_get(slots, slot_table[i].id);
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
