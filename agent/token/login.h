/*
 * Login signing (issue 4): a Web eID authentication token (format
 * web-eid:1.0) bound to the portal's origin. The card signs
 *   hash(origin) || hash(challenge)
 * with the algorithm's hash (SHA-256 for ES256/RS256/PS256, SHA-384 for
 * ES384), where origin and challenge are the exact strings the portal's back
 * end also has (the challenge as its Base64 text). PIN verify, signature and
 * logout happen in one card transaction that ends with a card reset.
 */
#ifndef UKEY_TOKEN_LOGIN_H
#define UKEY_TOKEN_LOGIN_H

#include "token/token.h"
#include "util/error.h"

#include <jansson.h>

#define LOGIN_APP_VERSION_URL "https://ukey-agent.invalid/releases/"

struct login_request {
    const char *token_id;       /* NULL: the first token present */
    const char *cert_id;        /* NULL: the token's authentication certificate */
    const char *pin;            /* NULL: typed on the reader's PIN pad (PIN_REQUIRED without one) */
    const char *origin;         /* the request's allowed Origin */
    const char *challenge;      /* Base64 text of >= 32 random bytes */
    const char *algorithm;      /* NULL, or "PS256" to ask for RSA-PSS */
    int confirm_last_attempt;
};

/* The longest challenge, in Base64 characters (768 bytes). */
#define LOGIN_CHALLENGE_MAX_CHARS 1024

/* 1 if `b64` is a usable challenge, the one rule of both login paths (page
 * and consent): the padded Base64 (RFC 4648 section 4, one line: no CR, LF,
 * space or other character outside the alphabet) of at least 32 bytes, at
 * most LOGIN_CHALLENGE_MAX_CHARS characters. */
int login_challenge_valid(const char *b64);

/*
 * Signs the login. On success *token is the Web eID token object (owned by
 * the caller). *pin holds the PIN state afterwards, also on PIN errors.
 */
ukey_err tokens_login(const struct login_request *req, json_t **token, struct token_pin *pin);

/*
 * Proves that the card holds the private key of certificate `cert_id` by
 * signing a random digest with it, without a PIN (only for keys the card
 * uses without one, e.g. PIV 9E), and checking the signature with the
 * certificate. UKEY_OK when it matches; CARD_ERROR when it does not (or the
 * card cannot sign); PIN_REQUIRED for a key that needs the PIN.
 */
ukey_err tokens_check_key(const char *token_id, const char *cert_id);

#endif
