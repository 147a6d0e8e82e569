/*
 * POST /api/v1/sign (issue 15)
 *   {"data": "…", "encoding": "text"|"base64"?, "format": "raw"|"cms"|"cms-attached"?,
 *    "algorithm": "SM3withSM2"|"SHA256withRSA"|"SHA256withECDSA"|"SHA384withECDSA"?,
 *    "token": id?, "certificate": id?, "pin": "…", "confirm_last_attempt": bool?, "consent": bool?}
 * -> {"format", "algorithm", "signature", "certificate", "token", "certificate_id"};
 * or, with "consent": true and no PIN, 202 and a pending request whose
 * window shows the origin and what is signed (consent.c), its answer read
 * with GET /api/v1/sign/{id}. Only for sites whose allow_origins entry has
 * "legacy_sign": true (SIGN_NOT_ALLOWED before anything else: such a
 * signature is not bound to the site). The PIN rules are the login's.
 */
#include "api/signing.h"

#include "util/b64.h"

#include <stdlib.h>
#include <string.h>

/* The data's bytes: the text's UTF-8 (the JSON layer refuses U+0000), or
 * the decoded Base64, 1 to SIGN_DATA_MAX bytes, into buf (SIGN_DATA_MAX bytes). */
static ukey_err data_bytes(json_t *data, int base64, unsigned char *buf, size_t *len)
{
    const char *s = json_string_value(data);
    size_t n = json_string_length(data);
    if (base64) {
        if (n > (SIGN_DATA_MAX + 2) / 3 * 4 || b64_decode_strict(s, n, buf, SIGN_DATA_MAX, len) != 0)
            return UKEY_ERR_DATA_INVALID;
    } else {
        if (n > SIGN_DATA_MAX)
            return UKEY_ERR_DATA_INVALID;
        memcpy(buf, s, n);
        *len = n;
    }
    return *len > 0 ? UKEY_OK : UKEY_ERR_DATA_INVALID;
}

ukey_err api_sign(const struct api_request *req, struct api_reply *reply)
{
    struct signing s = {.kind = SIGNING_SIGN};
    json_t *v, *data = NULL;
    const char *key, *encoding = "text", *format = "raw";
    unsigned char *buf = NULL;
    ukey_err e = UKEY_OK;
    int consent = 0, taken;

    json_object_foreach(req->body, key, v) {
        const char **slot = strcmp(key, "encoding") == 0    ? &encoding
                            : strcmp(key, "format") == 0    ? &format
                            : strcmp(key, "algorithm") == 0 ? &s.sign.algorithm
                                                            : NULL;
        if ((taken = api_signer_member(&s, key, v, &consent)) != 0) {
            if (taken < 0)
                e = UKEY_ERR_BAD_REQUEST;
        } else if (strcmp(key, "data") == 0 && json_is_string(v)) {
            data = v;
        } else if (!slot || !json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            e = UKEY_ERR_BAD_REQUEST;
        } else {
            *slot = json_string_value(v);
        }
    }
    /* Policy first: nothing of such a request reaches the card otherwise. */
    if (!req->origin || !config_legacy_sign_for(req->agent->cfg, req->origin))
        e = UKEY_ERR_SIGN_NOT_ALLOWED;
    if (e == UKEY_OK && (!data || (strcmp(encoding, "text") != 0 && strcmp(encoding, "base64") != 0) ||
                         sign_format_named(format, &s.sign.format) != 0))
        e = UKEY_ERR_BAD_REQUEST;
    if (e == UKEY_OK && s.sign.algorithm && !websig_sign_name_known(s.sign.algorithm))
        e = UKEY_ERR_ALGORITHM_MISMATCH;
    if (e == UKEY_OK && !(buf = malloc(SIGN_DATA_MAX)))
        e = UKEY_ERR_OUT_OF_MEMORY;
    s.base64 = strcmp(encoding, "base64") == 0;
    if (e == UKEY_OK)
        e = data_bytes(data, s.base64, buf, &s.sign.len);
    s.sign.data = buf;
    e = api_signing_run(req, reply, &s, consent, e);
    free(buf);
    return e;
}
