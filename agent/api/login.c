/*
 * POST /api/v1/login
 *   {"challenge": "<Base64>", "pin": "…", "token": id?, "certificate": id?,
 *    "algorithm": "PS256"?, "confirm_last_attempt": bool?}
 * -> the Web eID authentication token; or, with "consent": true and no PIN,
 * 202 and a pending login confirmed in the agent's window (consent.c). No "pin"
 * on a token whose reader has a PIN pad: the user types it there. The origin that is signed is the
 * request's Origin header (already checked against the allow-list by the
 * guard) and nothing else: never a member of the body.
 */
#include "api/api.h"

#include "token/login.h"
#include "util/secret.h"

#include <string.h>

ukey_err api_login(const struct api_request *req, struct api_reply *reply)
{
    struct login_request lr = {0};
    struct token_pin pin;
    const char *key;
    json_t *v;
    ukey_err e = UKEY_OK;
    int consent = 0;

    json_object_foreach(req->body, key, v) {
        const char **slot = strcmp(key, "challenge") == 0 ? &lr.challenge
                            : strcmp(key, "pin") == 0 ? &lr.pin
                            : strcmp(key, "token") == 0 ? &lr.token_id
                            : strcmp(key, "certificate") == 0 ? &lr.cert_id
                            : strcmp(key, "algorithm") == 0 ? &lr.algorithm : NULL;
        if (strcmp(key, "confirm_last_attempt") == 0 && json_is_boolean(v)) {
            lr.confirm_last_attempt = json_is_true(v);
            continue;
        }
        if (strcmp(key, "consent") == 0 && json_is_boolean(v)) {
            consent = json_is_true(v);
            continue;
        }
        if (!slot || !json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            e = UKEY_ERR_BAD_REQUEST;
            break;
        }
        *slot = json_string_value(v);
    }
    if (e == UKEY_OK && (!lr.challenge || (lr.algorithm && strcmp(lr.algorithm, "PS256") != 0 &&
                                            strcmp(lr.algorithm, "RS256") != 0)))
        e = UKEY_ERR_BAD_REQUEST;
    if (e == UKEY_OK && !req->origin)
        e = UKEY_ERR_ORIGIN_REQUIRED;
    if (e == UKEY_OK && consent) {
        /* The PIN will be typed in the agent's window, never sent from here. */
        e = lr.pin ? UKEY_ERR_BAD_REQUEST : consent_create(req, &lr, reply);
        goto out;
    }
    /* No PIN: typed on the reader's PIN pad, or PIN_REQUIRED (tokens_login). */
    if (lr.pin && !*lr.pin)
        lr.pin = NULL;
    if (e == UKEY_OK && !api_pin_from_page_allowed(req))
        e = UKEY_ERR_PIN_ENTRY_IN_WINDOW;
    if (e == UKEY_OK) {
        lr.origin = req->origin;
        e = tokens_login(&lr, &reply->json, &pin);
        if (e != UKEY_OK)
            reply->error_extra = api_pin_error_extra(e, &pin);
    }
out:
    if (lr.pin)
        secret_wipe((char *)lr.pin, strlen(lr.pin));
    return e;
}
