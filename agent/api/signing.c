/* What logins and data signatures share; see signing.h. */
#include "api/signing.h"

#include "util/secret.h"

#include <string.h>

int api_signer_member(struct signing *s, const char *key, json_t *v, int *consent)
{
    const char **slot = strcmp(key, "pin") == 0           ? &s->who.pin
                        : strcmp(key, "token") == 0       ? &s->who.token_id
                        : strcmp(key, "certificate") == 0 ? &s->who.cert_id
                                                          : NULL;
    int *flag = strcmp(key, "confirm_last_attempt") == 0 ? &s->who.confirm_last_attempt
                : strcmp(key, "consent") == 0            ? consent
                                                         : NULL;
    if (flag) {
        if (!json_is_boolean(v))
            return -1;
        *flag = json_is_true(v);
        return 1;
    }
    if (!slot)
        return 0;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return -1;
    *slot = json_string_value(v);
    return 1;
}

ukey_err signing_card(const struct signing *s, json_t **answer, struct token_pin *pin)
{
    return s->kind == SIGNING_LOGIN ? tokens_login(&s->who, &s->login, answer, pin)
                                    : tokens_sign(&s->who, &s->sign, answer, pin);
}

ukey_err api_signing_run(const struct api_request *req, struct api_reply *reply, struct signing *s, int consent,
                         ukey_err e)
{
    struct token_pin pin;
    const char *typed = s->who.pin;

    if (e == UKEY_OK && consent) {
        /* The PIN will be typed in the agent's window, never sent from here. */
        e = s->who.pin ? UKEY_ERR_BAD_REQUEST : consent_create(req, s, reply);
        goto out;
    }
    /* No PIN: typed on the reader's PIN pad, or PIN_REQUIRED. */
    if (s->who.pin && !*s->who.pin)
        s->who.pin = NULL;
    if (e == UKEY_OK && !api_pin_from_page_allowed(req))
        e = UKEY_ERR_PIN_ENTRY_IN_WINDOW;
    if (e == UKEY_OK) {
        e = signing_card(s, &reply->json, &pin);
        if (e != UKEY_OK)
            reply->error_extra = api_pin_error_extra(req, e, &pin, s->who.token_id, s->who.cert_id);
    }
out:
    if (typed)
        secret_wipe((char *)typed, strlen(typed));
    return e;
}
