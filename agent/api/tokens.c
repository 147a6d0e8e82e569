/*
 * GET  /api/v1/tokens                       readers, tokens, certificates, PIN state
 * POST /api/v1/tokens/{id}/pin/verify       {"pin"?, "confirm_last_attempt"?} (no PIN: on the reader's pad)
 * POST /api/v1/tokens/{id}/pin/change       {"old_pin", "new_pin", "confirm_last_attempt"?}
 * POST /api/v1/tokens/{id}/pin/unblock      {"puk", "new_pin", "confirm_last_attempt"?}
 * PINs are wiped from the parsed body as soon as the card has them.
 */
#include "api/api.h"

#include "profile/profile.h"
#include "token/tokens.h"
#include "util/secret.h"
#include "x509/crt.h"

#include <stdlib.h>
#include <string.h>

ukey_err api_tokens(const struct api_request *req, struct api_reply *reply)
{
    ukey_err e = tokens_list(&reply->json);
    (void)req;
    if (e != UKEY_OK) {
        /* No PC/SC service: the error envelope says what to do. */
        json_decref(reply->json);
        reply->json = NULL;
        return e;
    }
    return reply->json ? UKEY_OK : UKEY_ERR_OUT_OF_MEMORY;
}

/* Checks that `body` has exactly the string members `need` (and optionally
 * the boolean confirm_last_attempt); fills `out` in the same order. */
static int take_members(json_t *body, const char *const *need, size_t n, const char **out, int *confirm)
{
    const char *key;
    json_t *v;
    size_t seen = 0;
    *confirm = 0;
    json_object_foreach(body, key, v) {
        size_t i;
        if (strcmp(key, "confirm_last_attempt") == 0) {
            if (!json_is_boolean(v))
                return -1;
            *confirm = json_is_true(v);
            continue;
        }
        for (i = 0; i < n && strcmp(key, need[i]) != 0; i++)
            ;
        if (i == n || !json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            return -1;
        out[i] = json_string_value(v);
        seen++;
    }
    return seen == n ? 0 : -1;
}

static void wipe_strings(json_t *body)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
        if (json_is_string(v))
            secret_wipe((char *)json_string_value(v), json_string_length(v));
}

/* The deployment profile's help for an error about the PIN, the PUK or a
 * certificate of token `token_id` (NULL: the first token) and its
 * certificate `cert_id` (NULL: the authentication one), or NULL. */
static json_t *error_help(const struct api_request *req, ukey_err e, const char *token_id, const char *cert_id)
{
    const struct token_driver *driver;
    char id[TOKEN_ID_LEN], reader[128];
    struct token_pin pin;
    struct token_cert_copy cert;
    enum help_topic topic;
    X509 *x;
    struct profile_help h;
    json_t *help = NULL;

    switch (e) {
    case UKEY_ERR_PIN_BLOCKED:
    case UKEY_ERR_PIN_LAST_ATTEMPT:
    case UKEY_ERR_PUK_INCORRECT:
    case UKEY_ERR_PUK_BLOCKED:
    case UKEY_ERR_PUK_LAST_ATTEMPT:
        topic = HELP_UNLOCK;
        break;
    case UKEY_ERR_CERT_INVALID:
        topic = HELP_SERVICE;
        break;
    default:
        return NULL;
    }
    if (tokens_find(token_id, cert_id, &driver, id, reader, &pin, &cert) != UKEY_OK)
        return NULL;
    if ((x = x509_from_der(cert.der, cert.der_len)) != NULL && profiles_help(x, topic, &h) == 0)
        help = profile_help_json(&h, diag_lang_from(req->header(req, "Accept-Language")));
    X509_free(x);
    free(cert.der);
    return help;
}

json_t *api_pin_error_extra(const struct api_request *req, ukey_err e, const struct token_pin *pin,
                            const char *token_id, const char *cert_id)
{
    /* A PUK error counts the PUK's tries; every other the PIN's. */
    int puk = e == UKEY_ERR_PUK_INCORRECT || e == UKEY_ERR_PUK_BLOCKED || e == UKEY_ERR_PUK_LAST_ATTEMPT;
    int left = puk ? pin->puk_retries_left : pin->retries_left;
    json_t *extra = json_object(), *help;

    if (extra && left >= 0) {
        json_object_set_new(extra, "retries_left", json_integer(left));
        json_object_set_new(extra, "blocked", json_boolean(puk ? pin->puk_blocked || e == UKEY_ERR_PUK_BLOCKED
                                                               : pin->blocked || e == UKEY_ERR_PIN_BLOCKED));
    }
    /* When the next PIN operation on this token may run (pacing). */
    if (extra && pin->retry_after_ms > 0)
        json_object_set_new(extra, "retry_after_ms", json_integer(pin->retry_after_ms));
    if (extra && (help = error_help(req, e, token_id, cert_id)) != NULL)
        json_object_set_new(extra, "help", help);
    if (extra && json_object_size(extra) == 0) {
        json_decref(extra);
        extra = NULL;
    }
    return extra;
}

static ukey_err pin_endpoint(const struct api_request *req, struct api_reply *reply,
                             enum token_pin_op op)
{
    static const char *const verify_keys[] = {"pin"};
    static const char *const change_keys[] = {"old_pin", "new_pin"};
    static const char *const unblock_keys[] = {"puk", "new_pin"};
    const char *const *keys = op == TOKEN_PIN_VERIFY ? verify_keys : op == TOKEN_PIN_CHANGE ? change_keys : unblock_keys;
    const char *values[2] = {NULL, NULL};
    size_t n = op == TOKEN_PIN_VERIFY ? 1 : 2;
    struct pin_request pr = {.op = op};
    struct token_pin pin;
    ukey_err e;

    if (!api_pin_from_page_allowed(req)) {
        wipe_strings(req->body);
        return UKEY_ERR_PIN_ENTRY_IN_WINDOW;
    }
    /* A verify without a PIN is typed on the reader's pad; tokens_pin refuses
     * it (INVALID_REQUEST) for a token without one. */
    if (op == TOKEN_PIN_VERIFY && !json_object_get(req->body, "pin"))
        n = 0;
    if (take_members(req->body, keys, n, values, &pr.confirm_last_attempt) != 0) {
        wipe_strings(req->body);
        return UKEY_ERR_BAD_REQUEST;
    }
    pr.a = values[0];
    pr.b = values[1];
    e = tokens_pin(req->param, &pr, &pin);
    wipe_strings(req->body);
    if (e != UKEY_OK) {
        reply->error_extra = api_pin_error_extra(req, e, &pin, req->param, NULL);
        return e;
    }
    reply->json = json_pack("{s:b, s:{s:o, s:b}, s:{s:o, s:b}}",
                            op == TOKEN_PIN_VERIFY ? "verified" : op == TOKEN_PIN_CHANGE ? "changed" : "unblocked", 1,
                            "pin", "retries_left",
                            pin.retries_left >= 0 ? json_integer(pin.retries_left) : json_null(),
                            "blocked", pin.blocked,
                            "puk", "retries_left",
                            pin.puk_retries_left >= 0 ? json_integer(pin.puk_retries_left) : json_null(),
                            "blocked", pin.puk_blocked);
    return reply->json ? UKEY_OK : UKEY_ERR_OUT_OF_MEMORY;
}

ukey_err api_pin_verify(const struct api_request *req, struct api_reply *reply)
{
    return pin_endpoint(req, reply, TOKEN_PIN_VERIFY);
}

ukey_err api_pin_change(const struct api_request *req, struct api_reply *reply)
{
    return pin_endpoint(req, reply, TOKEN_PIN_CHANGE);
}

ukey_err api_pin_unblock(const struct api_request *req, struct api_reply *reply)
{
    return pin_endpoint(req, reply, TOKEN_PIN_UNBLOCK);
}
