/*
 * What POST /api/v1/login and POST /api/v1/sign share (issue 15): the
 * signer's members of the body ("token", "certificate", "pin",
 * "confirm_last_attempt", "consent"), page mode (the PIN in the request)
 * and consent mode (the PIN typed in the agent's window, consent.c), and
 * the card work of either kind.
 */
#ifndef UKEY_API_SIGNING_H
#define UKEY_API_SIGNING_H

#include "api/api.h"
#include "token/login.h"
#include "token/sign.h"

enum signing_kind { SIGNING_LOGIN, SIGNING_SIGN };

struct signing {
    enum signing_kind kind;
    struct token_signer who;
    struct login_request login; /* SIGNING_LOGIN */
    struct sign_request sign;   /* SIGNING_SIGN */
    int base64;                 /* SIGNING_SIGN: the page gave the data as Base64 (the window shows its digest) */
};

/* The body member `key` if it is one of the signer's: 1 (taken into `s`
 * or *consent), 0 (not the signer's), -1 (the signer's, wrong type). */
int api_signer_member(struct signing *s, const char *key, json_t *v, int *consent);

/* After the body is parsed (`e`: UKEY_OK, or its error): consent mode (no
 * PIN: 202 and a pending request) or page mode (the PIN of this request,
 * if the site may send it). Wipes the PIN in every case. */
ukey_err api_signing_run(const struct api_request *req, struct api_reply *reply, struct signing *s, int consent,
                         ukey_err e);

/* The card work of `s`: the login's token or the data signature's answer. */
ukey_err signing_card(const struct signing *s, json_t **answer, struct token_pin *pin);

/* A request confirmed in the agent's window (consent.c); `s` is copied. */
ukey_err consent_create(const struct api_request *req, const struct signing *s, struct api_reply *reply);

#endif
