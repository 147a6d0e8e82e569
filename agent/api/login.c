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
#include "api/signing.h"

#include <string.h>

ukey_err api_login(const struct api_request *req, struct api_reply *reply)
{
    struct signing s = {.kind = SIGNING_LOGIN};
    const char *key;
    json_t *v;
    ukey_err e = UKEY_OK;
    int consent = 0, taken;

    json_object_foreach(req->body, key, v) {
        const char **slot = strcmp(key, "challenge") == 0   ? &s.login.challenge
                            : strcmp(key, "algorithm") == 0 ? &s.login.algorithm
                                                            : NULL;
        if ((taken = api_signer_member(&s, key, v, &consent)) != 0) {
            if (taken < 0)
                e = UKEY_ERR_BAD_REQUEST;
            continue;
        }
        if (!slot || !json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            e = UKEY_ERR_BAD_REQUEST;
            continue;
        }
        *slot = json_string_value(v);
    }
    if (e == UKEY_OK && (!s.login.challenge || (s.login.algorithm && strcmp(s.login.algorithm, "PS256") != 0 &&
                                                 strcmp(s.login.algorithm, "RS256") != 0)))
        e = UKEY_ERR_BAD_REQUEST;
    if (e == UKEY_OK && !req->origin)
        e = UKEY_ERR_ORIGIN_REQUIRED;
    s.login.origin = req->origin;
    return api_signing_run(req, reply, &s, consent, e);
}
