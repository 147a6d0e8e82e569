/*
 * Tokens: the model every card driver fills, and the driver table (like
 * OpenSC's sc_card_operations). PIV is the first driver; OpenPGP, PKCS#11
 * and SKF follow the same table.
 *
 * Every operation runs inside one PC/SC transaction (pcsc_with_card) and
 * starts with match(), which selects the driver's application again: PC/SC
 * tells nobody when another program selects something else between two
 * transactions (the event counter counts insertions and removals, a reset
 * is reported only to handles connected through it), so a selection is
 * never assumed to have lasted. The other calls assume it and send no
 * SELECT of their own.
 */
#ifndef UKEY_TOKEN_TOKEN_H
#define UKEY_TOKEN_TOKEN_H

#include "token/pcsc.h"
#include "util/error.h"

#include <jansson.h>
#include <stddef.h>

#define TOKEN_MAX_CERTS 4
#define TOKEN_ID_LEN 40
#define TOKEN_CERT_ID_LEN 16

struct token_cert {
    char id[TOKEN_CERT_ID_LEN]; /* driver's key reference, e.g. "9a" */
    const char *slot;           /* e.g. "PIV Authentication" */
    char container[64];         /* the key's container on the token (SKF), or "" */
    int auth;                   /* the key for logging in */
    int pin_free;               /* the card signs with this key without a PIN */
    unsigned char *der;
    size_t der_len;
};

struct token_pin {
    int retries_left;           /* -1 when the card does not say */
    int retries_low;            /* a wrong PIN since the last right one, count untold (PKCS#11) */
    int blocked;
    int pin_pad;                /* the reader has a PIN pad */
    unsigned min_len, max_len;  /* accepted PIN length */
    int digits_only;            /* the PIN is made of the digits 0-9 only */
    /* The unblocking secret: PIV PUK, OpenPGP Resetting Code, PKCS#11 SO
     * PIN, SKF administrator PIN. Same meanings as above. */
    int puk_retries_left;       /* -1 when the token does not say */
    int puk_retries_low;
    int puk_blocked;
    int puk_untold;             /* the token cannot tell the PUK counter at all (PIV without
                                 * GET METADATA): the last-try guard assumes any try may be the last */
    unsigned retry_after_ms;    /* the agent's pacing: wait this long before the next PIN operation */
};

struct token {
    char id[TOKEN_ID_LEN];      /* stable for the same card in any reader */
    char reader[128];
    const struct token_driver *driver;
    char label[64];
    char serial[40];
    struct token_cert certs[TOKEN_MAX_CERTS];
    size_t n_certs;
    struct token_pin pin;
};

enum token_pin_op { TOKEN_PIN_VERIFY, TOKEN_PIN_CHANGE, TOKEN_PIN_UNBLOCK };

/* The key kinds a driver signs with. */
enum token_key { TOKEN_KEY_RSA2048, TOKEN_KEY_P256, TOKEN_KEY_P384, TOKEN_KEY_SM2 };

struct token_driver {
    const char *name;           /* "PIV" */
    /* Selects the application: UKEY_OK if this driver handles the card,
     * TOKEN_NOT_SUPPORTED if not, or a transport error. Required. */
    ukey_err (*match)(struct card *card);
    /* Reads only the token id (the card's identity), to check that the card
     * in the reader is still the one the caller means. Required. */
    ukey_err (*identify)(struct card *card, char id[TOKEN_ID_LEN]);
    /* Reads id, label, serial and certificates into `t` (certificates are
     * malloc'd; token_clear frees them). Called once per insertion: the
     * result is cached. Required. */
    ukey_err (*read)(struct card *card, struct token *t);
    /* Reads the PIN state without spending a try, pin_pad included, and
     * the PUK's counter where the token tells it (puk_retries_left -1 and
     * puk_untold when it cannot). Required. */
    ukey_err (*pin_status)(struct card *card, struct token_pin *pin);
    /* The same for the PIN alone (its counter, length rules, pin_pad),
     * leaving the PUK's fields as they are: what a signature needs before
     * its VERIFY, where pin_status would spend more card commands.
     * Optional: NULL when pin_status costs no more. */
    ukey_err (*pin_tries)(struct card *card, struct token_pin *pin);
    /* VERIFY / CHANGE / RESET RETRY COUNTER. `a` is the PIN (verify), the
     * old PIN (change) or the PUK (unblock); `b` the new PIN or NULL. The
     * format has been checked. On a wrong PIN returns PIN_INCORRECT with
     * pin->retries_left set; on a wrong PUK PUK_INCORRECT / PUK_BLOCKED
     * with pin->puk_retries_left set (the PIN's counter untouched).
     * A verify with `a` NULL means the PIN is typed on the reader or token
     * itself (pin_status said pin_pad): PC/SC Part 10 VERIFY_PIN_DIRECT for
     * a card reader, C_Login with a NULL PIN for a PKCS#11 token with a
     * protected authentication path. Same answers as with a PIN, plus
     * PIN_PAD_TIMEOUT / PIN_PAD_CANCELLED; PIN_REQUIRED when there is no
     * pad. Required. */
    ukey_err (*pin_op)(struct card *card, enum token_pin_op op, const char *a, const char *b,
                       struct token_pin *pin);
    /* Signs `digest` (SHA-256 or SHA-384, told by its length) with the
     * private key of certificate `cert_id`, after a PIN verify in the same
     * transaction. RSA: PKCS#1 v1.5, or PSS (MGF1 with the same hash, salt
     * as long as the digest) when `pss` is set; a card that cannot do PSS
     * answers TOKEN_NOT_SUPPORTED. SM2 (`kind` TOKEN_KEY_SM2): `digest` is
     * the 32-byte e = SM3(Z_A || M) the host computed (GM/T 0003.2 6.1),
     * signed as it is. `out` gets the RSA signature, or the DER
     * ECDSA-Sig-Value / SM2Signature (both SEQUENCE {r, s}); *out_len holds
     * the capacity on entry. A driver that cannot do `kind` answers
     * TOKEN_NOT_SUPPORTED. Required. */
    ukey_err (*sign)(struct card *card, const char *cert_id, enum token_key kind, int pss,
                     const unsigned char *digest, size_t digest_len, unsigned char *out, size_t *out_len);
    /* Drops the card's verified state (e.g. VERIFY P1=FF). Required. */
    void (*logout)(struct card *card);
};

/* Frees what a driver's read() allocated and zeroes `t`. */
void token_clear(struct token *t);

/* Checks a PIN's format against the token's rules, before any card command
 * (a malformed PIN must never cost a try). UKEY_OK or PIN_FORMAT. */
ukey_err token_pin_format(const struct token_pin *pin, const char *value);

/* The token as JSON for GET /api/v1/tokens (certificates in detail). */
json_t *token_json(const struct token *t);

extern const struct token_driver piv_driver;
extern const struct token_driver openpgp_driver;

#endif
