/* Login signing; see login.h. */
#include "token/login.h"

#include "token/tokens.h"
#include "util/b64.h"
#include "util/log.h"
#include "util/rng.h"
#include "util/secret.h"
#include "x509/crt.h"
#include "x509/sigenc.h"
#include "x509/websig.h"

#include <stdlib.h>
#include <string.h>

#define CHALLENGE_MIN_BYTES 32

/* Everything the card transaction needs, prepared before it starts. */
struct sign_job {
    const struct token_signer *who;
    const struct token_driver *driver;
    char token_id[TOKEN_ID_LEN];
    char cert_id[TOKEN_CERT_ID_LEN];
    enum token_key kind;
    enum websig_alg alg;
    int pss;
    unsigned char digest[64];
    size_t digest_len;
    unsigned char sig[512];
    size_t sig_len;
    struct token_pin *pin;
};

int login_challenge_valid(const char *b64)
{
    unsigned char buf[LOGIN_CHALLENGE_MAX_CHARS];
    size_t n = strlen(b64), out = 0;
    return n > 0 && n <= LOGIN_CHALLENGE_MAX_CHARS && b64_decode_strict(b64, n, buf, sizeof buf, &out) == 0 &&
           out >= CHALLENGE_MIN_BYTES;
}

/* The certificate's login algorithm and the key kind the driver signs
 * with; -1 if the agent does not sign with such a key. */
static int key_kind(X509 *crt, int pss, struct sign_job *job)
{
    if (websig_alg_for_key(crt, pss, &job->alg) != 0)
        return -1;
    job->kind = job->alg == WEBSIG_ES256     ? TOKEN_KEY_P256
                : job->alg == WEBSIG_ES384   ? TOKEN_KEY_P384
                : job->alg == WEBSIG_SM2_SM3 ? TOKEN_KEY_SM2
                                             : TOKEN_KEY_RSA2048;
    job->pss = job->alg == WEBSIG_PS256;
    return 0;
}

/* The card's signature in token form (r||s for ECDSA and SM2, RFC 7518
 * 3.4; RSA as it is) into out (WEBSIG_MAX_SIG bytes); its length, 0 if the
 * card's answer is malformed. */
static size_t token_form(const struct sign_job *job, unsigned char out[WEBSIG_MAX_SIG])
{
    size_t n = websig_ec_size(job->alg);
    if (!n) {
        if (job->sig_len > WEBSIG_MAX_SIG)
            return 0;
        memcpy(out, job->sig, job->sig_len);
        return job->sig_len;
    }
    return sigenc_ecdsa_der_to_raw(job->sig, job->sig_len, n, out) == 0 ? 2 * n : 0;
}

/* Selects the driver's application and makes sure the card is token
 * `token_id`: the same insertion the cache read it from needs no second
 * look at its identity (tokens_same_insertion); otherwise it is read. */
static ukey_err select_token(struct card *card, const struct token_driver *d, const char *token_id)
{
    char id[TOKEN_ID_LEN];
    ukey_err e;
    if ((e = d->match(card)) != UKEY_OK || tokens_same_insertion(token_id, card))
        return e;
    if ((e = d->identify(card, id)) != UKEY_OK)
        return e;
    return strcmp(id, token_id) == 0 ? UKEY_OK : UKEY_ERR_TOKEN_NOT_FOUND;
}

/*
 * The card commands of a signature with a PIN, on a card the cache knows:
 * SELECT, the PIN's counter (fresh: another program may have spent tries,
 * and the last-attempt guard rests on it), VERIFY, the signature, logout.
 * After a right PIN the counter is back at its maximum: read once per
 * insertion (tokens_pin_max), then known. A wrong PIN's answer tells the
 * count itself.
 */
static ukey_err pin_sign_on_card(struct card *card, void *arg)
{
    struct sign_job *job = arg;
    const struct token_driver *d = job->driver;
    ukey_err (*pin_tries)(struct card *, struct token_pin *) = d->pin_tries ? d->pin_tries : d->pin_status;
    ukey_err e, v;
    int max;

    /* Pacing after a wrong PIN on this token, judged inside the card's
     * transaction like every PIN operation (tokens.h). */
    if ((job->pin->retry_after_ms = tokens_pin_wait(job->token_id)) > 0)
        return UKEY_ERR_PIN_TOO_SOON;
    if ((e = select_token(card, d, job->token_id)) != UKEY_OK)
        return e;
    if ((e = pin_tries(card, job->pin)) != UKEY_OK)
        return e;
    if (job->pin->blocked)
        return UKEY_ERR_PIN_BLOCKED;
    if (job->pin->retries_left == 1 && !job->who->confirm_last_attempt)
        return UKEY_ERR_PIN_LAST_ATTEMPT;
    /* The PIN of this very request, every time: whatever state the card is
     * in, the signature follows our own VERIFY (invariant 5). */
    e = v = d->pin_op(card, TOKEN_PIN_VERIFY, job->who->pin, NULL, job->pin);
    job->pin->retry_after_ms = tokens_pin_outcome(job->token_id, e);
    if (e == UKEY_OK) {
        job->sig_len = sizeof job->sig;
        e = d->sign(card, job->cert_id, job->kind, job->pss, job->digest, job->digest_len, job->sig, &job->sig_len);
    }
    d->logout(card);
    if (v == UKEY_ERR_PIN_BLOCKED || (v == UKEY_ERR_PIN_INCORRECT && job->pin->retries_left == 0))
        job->pin->blocked = 1;
    if (v != UKEY_OK)
        return e;
    if ((max = tokens_pin_max(job->token_id, -1)) >= 0) {
        job->pin->retries_left = max;
    } else {
        struct token_pin now = *job->pin;
        if (pin_tries(card, &now) == UKEY_OK) {
            *job->pin = now;
            tokens_pin_max(job->token_id, now.retries_left);
        }
    }
    job->pin->blocked = 0;
    return e;
}

/* Sign only: no VERIFY, so only a PIN-free key can answer. */
static ukey_err sign_on_card(struct card *card, void *arg)
{
    struct sign_job *job = arg;
    ukey_err e;
    if ((e = select_token(card, job->driver, job->token_id)) != UKEY_OK)
        return e;
    job->sig_len = sizeof job->sig;
    return job->driver->sign(card, job->cert_id, job->kind, 0, job->digest, job->digest_len, job->sig,
                            &job->sig_len);
}

ukey_err tokens_check_key(const char *token_id, const char *cert_id)
{
    struct sign_job job;
    struct token_cert_copy cert;
    struct token_pin pin;
    unsigned char sig[WEBSIG_MAX_SIG];
    size_t sig_len;
    X509 *crt;
    char reader[128];
    ukey_err e;

    memset(&job, 0, sizeof job);
    if ((e = tokens_find(token_id, cert_id, &job.driver, job.token_id, reader, &pin, &cert)) != UKEY_OK)
        return e;
    if (!(crt = x509_from_der(cert.der, cert.der_len)) || key_kind(crt, 0, &job) != 0) {
        e = UKEY_ERR_CERT_NOT_FOUND;
        goto out;
    }
    snprintf(job.cert_id, sizeof job.cert_id, "%s", cert.id);
    job.digest_len = job.kind == TOKEN_KEY_P384 ? 48 : 32;
    if (rng_random(NULL, job.digest, job.digest_len) != 0) {
        e = UKEY_ERR_INTERNAL;
        goto out;
    }
    e = token_with_card(reader, CARD_LEAVE, sign_on_card, &job);
    if (e == UKEY_OK && (!(sig_len = token_form(&job, sig)) ||
                         !websig_verify_digest(crt, job.alg, job.digest, job.digest_len, sig, sig_len)))
        e = UKEY_ERR_CARD_ERROR;
out:
    X509_free(crt);
    free(cert.der);
    return e;
}

/* The PIN state before the card said anything. */
static void pin_unknown(struct token_pin *pin)
{
    memset(pin, 0, sizeof *pin);
    pin->retries_left = -1;
    pin->puk_retries_left = -1;
}

void pin_signature_free(struct pin_signature *s)
{
    X509_free(s->crt);
    free(s->cert.der);
    memset(s, 0, sizeof *s);
}

ukey_err tokens_pin_sign(const struct token_signer *who, int pss, pin_sign_message message, void *arg,
                         struct pin_signature *out, struct token_pin *pin)
{
    struct sign_job job;
    const unsigned char *m;
    size_t m_len;
    char reader[128];
    ukey_err e;

    memset(&job, 0, sizeof job);
    memset(out, 0, sizeof *out);
    pin_unknown(pin);
    job.who = who;
    job.pin = pin;
    if ((e = tokens_find(who->token_id, who->cert_id, &job.driver, job.token_id, reader, pin, &out->cert)) != UKEY_OK)
        return e;
    if (!(out->crt = x509_from_der(out->cert.der, out->cert.der_len)) ||
        (!who->cert_id && !x509_usable_for_login(out->crt)) || key_kind(out->crt, pss, &job) != 0) {
        e = UKEY_ERR_CERT_NOT_FOUND;
        goto out;
    }
    snprintf(job.cert_id, sizeof job.cert_id, "%s", out->cert.id);
    snprintf(out->token_id, sizeof out->token_id, "%s", job.token_id);
    out->alg = job.alg;
    if ((e = message(arg, out->crt, job.alg, &m, &m_len)) != UKEY_OK)
        goto out;
    if (who->pin ? token_pin_format(pin, who->pin) != UKEY_OK : !pin->pin_pad) { /* no PIN: typed on the pad */
        e = who->pin ? UKEY_ERR_PIN_FORMAT : UKEY_ERR_PIN_REQUIRED;
        goto out;
    }
    if (!(job.digest_len = websig_digest(out->crt, job.alg, m, m_len, job.digest))) {
        e = UKEY_ERR_INTERNAL;
        goto out;
    }
    e = token_with_card(reader, CARD_RESET, pin_sign_on_card, &job);
    tokens_update_pin(job.token_id, pin);
    if (e != UKEY_OK)
        goto out;
    /* ECDSA and SM2 in token form, r||s (RFC 7518 3.4). */
    if (!(out->sig_len = token_form(&job, out->sig))) {
        e = UKEY_ERR_CARD_DATA_INVALID;
        goto out;
    }
    /* Check the card's work the way a verifier will, before handing it
     * out: a wrong key or a faulty card must not produce a signature that
     * fails later at the portal. */
    if (!websig_verify_message(out->crt, job.alg, m, m_len, out->sig, out->sig_len)) {
        log_warn("signature: the card's signature does not verify with certificate %s", job.cert_id);
        e = UKEY_ERR_CARD_ERROR;
    }
out:
    secret_wipe(&job, sizeof job);
    return e;
}

/* A login's message: hash(origin) || hash(challenge), see x509/websig.h. */
struct login_message {
    const struct login_request *req;
    unsigned char m[96];
};

static ukey_err login_message(void *arg, X509 *crt, enum websig_alg alg, const unsigned char **m, size_t *m_len)
{
    struct login_message *lm = arg;
    (void)crt;
    *m = lm->m;
    return (*m_len = websig_login_message(alg, lm->req->origin, lm->req->challenge, lm->m)) ? UKEY_OK
                                                                                             : UKEY_ERR_INTERNAL;
}

ukey_err tokens_login(const struct token_signer *who, const struct login_request *req, json_t **token,
                      struct token_pin *pin)
{
    struct login_message lm = {req, {0}};
    struct pin_signature ps;
    ukey_err e;

    *token = NULL;
    if (!login_challenge_valid(req->challenge)) {
        pin_unknown(pin);
        return UKEY_ERR_CHALLENGE_INVALID;
    }
    e = tokens_pin_sign(who, req->algorithm && strcmp(req->algorithm, "PS256") == 0, login_message, &lm, &ps, pin);
    if (e == UKEY_OK) {
        char *cert_b64 = b64_encode(ps.cert.der, ps.cert.der_len);
        char *sig_b64 = b64_encode(ps.sig, ps.sig_len);
        if (cert_b64 && sig_b64)
            *token = json_pack("{s:s, s:s, s:s, s:s, s:s+}", "unverifiedCertificate", cert_b64, "algorithm",
                               websig_name(ps.alg), "signature", sig_b64, "format", "web-eid:1.0", "appVersion",
                               LOGIN_APP_VERSION_URL, UKEY_VERSION);
        free(cert_b64);
        free(sig_b64);
        e = *token ? UKEY_OK : UKEY_ERR_OUT_OF_MEMORY;
    }
    pin_signature_free(&ps);
    return e;
}
