/* Login signing; see login.h. */
#include "token/login.h"

#include "token/tokens.h"
#include "util/log.h"
#include "util/rng.h"
#include "util/secret.h"
#include "x509/sigenc.h"

#include <mbedtls/base64.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>
#include <stdlib.h>
#include <string.h>

#define CHALLENGE_MIN_BYTES 32
#define CHALLENGE_MAX_CHARS 1024

/* Everything the card transaction needs, prepared before it starts. */
struct login_job {
    const struct login_request *req;
    const struct token_driver *driver;
    char token_id[TOKEN_ID_LEN];
    char cert_id[TOKEN_CERT_ID_LEN];
    enum token_key kind;
    int pss;
    unsigned char digest[64];
    size_t digest_len;
    unsigned char sig[512];
    size_t sig_len;
    struct token_pin *pin;
};

int login_challenge_valid(const char *b64)
{
    unsigned char buf[CHALLENGE_MAX_CHARS];
    size_t n = strlen(b64), out = 0;
    return n > 0 && n <= CHALLENGE_MAX_CHARS &&
           mbedtls_base64_decode(buf, sizeof buf, &out, (const unsigned char *)b64, n) == 0 &&
           out >= CHALLENGE_MIN_BYTES;
}

/* 1 if the certificate may sign a login: digitalSignature and, when it has
 * an EKU, clientAuth (issue 4). */
static int usable_for_login(const mbedtls_x509_crt *crt)
{
    return mbedtls_x509_crt_check_key_usage(crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) == 0 &&
           mbedtls_x509_crt_check_extended_key_usage(crt, MBEDTLS_OID_CLIENT_AUTH,
                                                     MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)) == 0;
}

/* The key kind and JOSE algorithm for a certificate; -1 if unsupported. */
static int key_kind(const mbedtls_x509_crt *crt, int pss, enum token_key *kind, const char **alg)
{
    if (mbedtls_pk_get_type(&crt->pk) == MBEDTLS_PK_RSA && mbedtls_pk_get_bitlen(&crt->pk) == 2048) {
        *kind = TOKEN_KEY_RSA2048;
        *alg = pss ? "PS256" : "RS256";
        return 0;
    }
    if (mbedtls_pk_get_type(&crt->pk) == MBEDTLS_PK_ECKEY) {
        mbedtls_ecp_group_id gid = mbedtls_pk_ec(crt->pk)->grp.id;
        if (gid == MBEDTLS_ECP_DP_SECP256R1)
            return *kind = TOKEN_KEY_P256, *alg = "ES256", 0;
        if (gid == MBEDTLS_ECP_DP_SECP384R1)
            return *kind = TOKEN_KEY_P384, *alg = "ES384", 0;
    }
    return -1;
}

static ukey_err login_on_card(struct card *card, void *arg)
{
    struct login_job *job = arg;
    const struct token_driver *d = job->driver;
    char id[TOKEN_ID_LEN];
    ukey_err e;

    if ((e = d->match(card)) != UKEY_OK || (e = d->identify(card, id)) != UKEY_OK)
        return e;
    if (strcmp(id, job->token_id) != 0)
        return UKEY_ERR_TOKEN_NOT_FOUND;
    if ((e = d->pin_status(card, job->pin)) != UKEY_OK)
        return e;
    if (job->pin->blocked)
        return UKEY_ERR_PIN_BLOCKED;
    if (job->pin->retries_left == 1 && !job->req->confirm_last_attempt)
        return UKEY_ERR_PIN_LAST_ATTEMPT;
    /* The PIN of this very request, every time: whatever state the card is
     * in, the signature follows our own VERIFY (invariant 5). */
    e = d->pin_op(card, TOKEN_PIN_VERIFY, job->req->pin, NULL, job->pin);
    if (e == UKEY_OK) {
        job->sig_len = sizeof job->sig;
        e = d->sign(card, job->cert_id, job->kind, job->pss, job->digest, job->digest_len, job->sig, &job->sig_len);
    }
    d->logout(card);
    {
        struct token_pin now = *job->pin;
        if (d->pin_status(card, &now) == UKEY_OK)
            *job->pin = now;
    }
    return e;
}

/* Sign only: no VERIFY, so only a PIN-free key can answer. */
static ukey_err sign_on_card(struct card *card, void *arg)
{
    struct login_job *job = arg;
    char id[TOKEN_ID_LEN];
    ukey_err e;
    if ((e = job->driver->match(card)) != UKEY_OK || (e = job->driver->identify(card, id)) != UKEY_OK)
        return e;
    if (strcmp(id, job->token_id) != 0)
        return UKEY_ERR_TOKEN_NOT_FOUND;
    job->sig_len = sizeof job->sig;
    return job->driver->sign(card, job->cert_id, job->kind, 0, job->digest, job->digest_len, job->sig,
                            &job->sig_len);
}

ukey_err tokens_check_key(const char *token_id, const char *cert_id)
{
    struct login_job job;
    struct token_cert_copy cert;
    struct token_pin pin;
    mbedtls_x509_crt crt;
    mbedtls_md_type_t md;
    const char *alg;
    char reader[128];
    ukey_err e;

    memset(&job, 0, sizeof job);
    if ((e = tokens_find(token_id, cert_id, &job.driver, job.token_id, reader, &pin, &cert)) != UKEY_OK)
        return e;
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, cert.der, cert.der_len) != 0 || key_kind(&crt, 0, &job.kind, &alg) != 0) {
        e = UKEY_ERR_CERT_NOT_FOUND;
        goto out;
    }
    snprintf(job.cert_id, sizeof job.cert_id, "%s", cert.id);
    md = job.kind == TOKEN_KEY_P384 ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA256;
    job.digest_len = md == MBEDTLS_MD_SHA384 ? 48 : 32;
    if (rng_random(NULL, job.digest, job.digest_len) != 0) {
        e = UKEY_ERR_INTERNAL;
        goto out;
    }
    e = token_with_card(reader, CARD_LEAVE, sign_on_card, &job);
    if (e == UKEY_OK && mbedtls_pk_verify(&crt.pk, md, job.digest, job.digest_len, job.sig, job.sig_len) != 0)
        e = UKEY_ERR_CARD_ERROR;
out:
    mbedtls_x509_crt_free(&crt);
    free(cert.der);
    return e;
}

static char *base64(const unsigned char *in, size_t len)
{
    size_t n = 0;
    char *out;
    mbedtls_base64_encode(NULL, 0, &n, in, len);
    if (!(out = malloc(n)) || mbedtls_base64_encode((unsigned char *)out, n, &n, in, len) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

ukey_err tokens_login(const struct login_request *req, json_t **token, struct token_pin *pin)
{
    struct login_job job;
    struct token_cert_copy cert;
    mbedtls_x509_crt crt;
    mbedtls_md_type_t md;
    unsigned char tbs[128], raw[96];
    const char *alg = NULL;
    char reader[128];
    size_t hlen;
    ukey_err e;

    *token = NULL;
    memset(&job, 0, sizeof job);
    memset(pin, 0, sizeof *pin);
    pin->retries_left = -1;
    job.req = req;
    job.pin = pin;
    if (!login_challenge_valid(req->challenge))
        return UKEY_ERR_CHALLENGE_INVALID;
    if ((e = tokens_find(req->token_id, req->cert_id, &job.driver, job.token_id, reader, pin, &cert)) != UKEY_OK)
        return e;
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, cert.der, cert.der_len) != 0 ||
        (!req->cert_id && !usable_for_login(&crt)) ||
        key_kind(&crt, req->algorithm && strcmp(req->algorithm, "PS256") == 0, &job.kind, &alg) != 0) {
        e = UKEY_ERR_CERT_NOT_FOUND;
        goto out;
    }
    snprintf(job.cert_id, sizeof job.cert_id, "%s", cert.id);
    if (req->pin ? token_pin_format(pin, req->pin) != UKEY_OK : !pin->pin_pad) { /* no PIN: typed on the pad */
        e = req->pin ? UKEY_ERR_PIN_FORMAT : UKEY_ERR_PIN_REQUIRED;
        goto out;
    }
    /* Web eID: sign hash(origin) || hash(challenge), with the algorithm's hash. */
    md = job.kind == TOKEN_KEY_P384 ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA256;
    hlen = sigenc_hash(md, (const unsigned char *)req->origin, strlen(req->origin), tbs);
    sigenc_hash(md, (const unsigned char *)req->challenge, strlen(req->challenge), tbs + hlen);
    job.digest_len = sigenc_hash(md, tbs, 2 * hlen, job.digest);
    job.pss = strcmp(alg, "PS256") == 0;
    e = token_with_card(reader, CARD_RESET, login_on_card, &job);
    tokens_update_pin(job.token_id, pin);
    if (e != UKEY_OK)
        goto out;
    /* ECDSA goes out in JOSE form, r||s (RFC 7518 3.4). */
    if (job.kind != TOKEN_KEY_RSA2048) {
        size_t n = job.kind == TOKEN_KEY_P384 ? 48 : 32;
        if (sigenc_ecdsa_der_to_raw(job.sig, job.sig_len, n, raw) != 0) {
            e = UKEY_ERR_CARD_DATA_INVALID;
            goto out;
        }
    }
    /* Check the card's work before handing it out: a wrong key or a faulty
     * card must not produce a token that fails later at the portal. */
    if (job.pss) {
        mbedtls_pk_rsassa_pss_options opts = {md, (int)hlen};
        e = mbedtls_pk_verify_ext(MBEDTLS_PK_RSASSA_PSS, &opts, &crt.pk, md, job.digest, hlen, job.sig,
                                  job.sig_len) == 0 ? UKEY_OK : UKEY_ERR_CARD_ERROR;
    } else {
        e = mbedtls_pk_verify(&crt.pk, md, job.digest, hlen, job.sig, job.sig_len) == 0 ? UKEY_OK
                                                                                     : UKEY_ERR_CARD_ERROR;
    }
    if (e != UKEY_OK) {
        log_warn("login: the card's signature does not verify with certificate %s", job.cert_id);
        goto out;
    }
    {
        char *cert_b64 = base64(cert.der, cert.der_len);
        char *sig_b64 = job.kind == TOKEN_KEY_RSA2048 ? base64(job.sig, job.sig_len)
                                                      : base64(raw, job.kind == TOKEN_KEY_P384 ? 96 : 64);
        if (cert_b64 && sig_b64)
            *token = json_pack("{s:s, s:s, s:s, s:s, s:s+}", "unverifiedCertificate", cert_b64, "algorithm", alg,
                               "signature", sig_b64, "format", "web-eid:1.0", "appVersion",
                               LOGIN_APP_VERSION_URL, UKEY_VERSION);
        free(cert_b64);
        free(sig_b64);
        e = *token ? UKEY_OK : UKEY_ERR_OUT_OF_MEMORY;
    }
out:
    mbedtls_x509_crt_free(&crt);
    free(cert.der);
    secret_wipe(&job, sizeof job);
    return e;
}
