/*
 * The token service: what GET /api/v1/tokens, the PIN endpoints and
 * `ukey-agent tokens` call. It owns the per-insertion cache (certificates do
 * not change while a card stays in its reader) and the PIN rules that hold
 * for every driver: format checked before any card command, the last try
 * of the PIN and of the PUK spent only when the caller confirms it, a
 * growing pause after each wrong PIN or PUK (pacing, per token), the
 * verified state dropped and the card reset at the end of every operation.
 */
#ifndef UKEY_TOKEN_TOKENS_H
#define UKEY_TOKEN_TOKENS_H

#include "token/token.h"
#include "util/error.h"

#include <jansson.h>

/*
 * {"pcsc": {...}, "readers": [{name, state, atr, token, error?}],
 *  "tokens": [token_json...]}. Returns UKEY_OK (readers and tokens may be
 * empty) or PCSC_UNAVAILABLE, with *out set either way when not NULL.
 */
ukey_err tokens_list(json_t **out);

/*
 * Runs fn(card, arg) on the token in `reader` (a PC/SC reader or a PKCS#11
 * slot), inside one transaction or session; see pcsc_with_card.
 */
ukey_err token_with_card(const char *reader, enum card_end end, ukey_err (*fn)(struct card *card, void *arg),
                         void *arg);

struct pin_request {
    enum token_pin_op op;
    const char *a;              /* PIN, old PIN or PUK; NULL: verify on the reader's PIN pad */
    const char *b;              /* new PIN, or NULL */
    int confirm_last_attempt;
};

/*
 * Runs a PIN operation on the token `id`. On return *pin holds the state
 * after it (retries left, blocked), also on PIN_INCORRECT and the like.
 */
ukey_err tokens_pin(const char *id, const struct pin_request *req, struct token_pin *pin);

/* A copy of one certificate of a token (der is malloc'd: free it). */
struct token_cert_copy {
    char id[TOKEN_CERT_ID_LEN];
    unsigned char *der;
    size_t der_len;
};

/*
 * Finds the token `id` (NULL: the first token present) in the cache,
 * listing the readers again if it is not there, and copies out what an
 * operation needs: its driver, id, reader and last PIN state, and (when
 * `cert` is not NULL) the certificate `cert_id` or, for NULL, the token's
 * authentication certificate. TOKEN_NOT_FOUND / CERT_NOT_FOUND otherwise.
 */
ukey_err tokens_find(const char *id, const char *cert_id, const struct token_driver **driver,
                     char token_id[TOKEN_ID_LEN], char reader[128], struct token_pin *pin,
                     struct token_cert_copy *cert);

/* Records the PIN state an operation left on token `id`. */
void tokens_update_pin(const char *id, const struct token_pin *pin);

/*
 * Inside a card operation: 1 if the card is still the very insertion the
 * cache read token `id` from (its PC/SC reader's event counter and ATR as
 * then: a removal or a new card changes the counter), so the card is that
 * token without reading its identity again; 0 otherwise, and for cards
 * with no PC/SC side (PKCS#11, SKF), which identify themselves cheaply.
 */
int tokens_same_insertion(const char *id, struct card *card);

/*
 * The PIN's retry count a right PIN leaves on token `id` (its maximum), as
 * known this insertion, or -1; `seen` >= 0 records it (read after a right
 * PIN).
 */
int tokens_pin_max(const char *id, int seen);

/*
 * Pacing (issue 17): after a wrong PIN or PUK the next PIN operation on the
 * same token waits base, 2 x base, 4 x base ... (at most 32 x base) after
 * it; a right one ends the pause, and so does pulling the card. The base is
 * "limits": {"pin_retry_delay_ms"} (1000 by default, 0 turns pacing off).
 */
void tokens_set_pin_delay(unsigned base_ms);

/* 0 if a PIN operation on token `id` may reach the card now, else the
 * milliseconds until it may (the caller answers PIN_TOO_SOON). Asked and
 * answered (tokens_pin_outcome) inside the card's transaction, so that
 * requests queued for the card at once meet the pause the first one left. */
unsigned tokens_pin_wait(const char *id);

/* Records how a PIN operation that reached token `id`'s card went (`e`:
 * a wrong PIN/PUK lengthens the pause, UKEY_OK ends it) and returns the
 * pause now in force, in milliseconds. */
unsigned tokens_pin_outcome(const char *id, ukey_err e);

/* Reads (or finds cached) the token in `reader` and copies its id;
 * UKEY_OK, or why there is no token there. *shadowed says the token is a
 * PKCS#11 module's view of a card a PC/SC driver reads too (the listing
 * shows that card once, the PC/SC way). */
ukey_err tokens_in_reader(const char *reader, char id[TOKEN_ID_LEN], int *shadowed);

/* The card left `reader`: drops its cache entry. Returns 1 and copies the
 * token id (and *shadowed, as above) if a token was known there, else 0. */
int tokens_forget_reader(const char *reader, char id[TOKEN_ID_LEN], int *shadowed);

/* Drops the cache (shutdown). */
void tokens_forget(void);

#endif
