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
#include "token/tokens.h"
#include "util/error.h"
#include "x509/websig.h"

#include <jansson.h>

#define LOGIN_APP_VERSION_URL "https://ukey-agent.invalid/releases/"

/* Who signs, and with which PIN: the same members and defaults for a login
 * and a data signature (token/sign.h). */
struct token_signer {
    const char *token_id;       /* NULL: the first token present */
    const char *cert_id;        /* NULL: the token's authentication certificate */
    const char *pin;            /* NULL: typed on the reader's PIN pad (PIN_REQUIRED without one) */
    int confirm_last_attempt;
};

struct login_request {
    const char *origin;         /* the request's allowed Origin */
    const char *challenge;      /* Base64 text of >= 32 random bytes */
    const char *algorithm;      /* NULL, or "PS256" to ask for RSA-PSS */
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
ukey_err tokens_login(const struct token_signer *who, const struct login_request *req, json_t **token,
                      struct token_pin *pin);

/*
 * The one card path of every PIN-protected signature (logins and issue 15's
 * data signatures): finds the signer's token and certificate, picks the
 * algorithm from its key (RSA-2048: RS256, or PS256 with `pss`; P-256:
 * ES256; P-384: ES384; SM2: SM2-SM3, see x509/websig.h), asks `message`
 * for the message M to sign (it may refuse with an error), checks the PIN
 * format, then in one card transaction verifies the PIN (never the last
 * attempt without confirm_last_attempt, paced after wrong ones), signs,
 * and logs out; at last checks the signature over M with the certificate.
 * *pin holds the PIN state afterwards, also on PIN errors. Whatever it
 * returns, release `out` with pin_signature_free.
 */
struct pin_signature {
    char token_id[TOKEN_ID_LEN];
    struct token_cert_copy cert;        /* the signing certificate's id and DER */
    X509 *crt;                          /* the same, parsed */
    enum websig_alg alg;
    unsigned char sig[WEBSIG_MAX_SIG];  /* token form: r || s for ES and SM2, RSA as it is */
    size_t sig_len;
};
/* M for `crt` and `alg`: *m stays valid until tokens_pin_sign returns. UKEY_OK or the error to answer. */
typedef ukey_err (*pin_sign_message)(void *arg, X509 *crt, enum websig_alg alg, const unsigned char **m,
                                     size_t *m_len);
ukey_err tokens_pin_sign(const struct token_signer *who, int pss, pin_sign_message message, void *arg,
                         struct pin_signature *out, struct token_pin *pin);
void pin_signature_free(struct pin_signature *s);

/*
 * Proves that the card holds the private key of certificate `cert_id` by
 * signing a random digest with it, without a PIN (only for keys the card
 * uses without one, e.g. PIV 9E), and checking the signature with the
 * certificate. UKEY_OK when it matches; CARD_ERROR when it does not (or the
 * card cannot sign); PIN_REQUIRED for a key that needs the PIN.
 */
ukey_err tokens_check_key(const char *token_id, const char *cert_id);

#endif
