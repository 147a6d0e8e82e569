/*
 * libukeyverify: checks a web-eid:1.0 login token in the order of
 * include/ukey/verify.h and names the first check that fails.
 */
#include <ukey/verify.h>

#include "util/file.h"
#include "util/format.h"
#include "x509/crl.h"
#include "x509/crt.h"
#include "x509/ext.h"
#include "x509/fetch.h"
#include "x509/name.h"
#include "x509/websig.h"

#include <jansson.h>
#include <mbedtls/base64.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRL_FILE_MAX (64u * 1024 * 1024)

struct ukey_verifier {
    X509_STORE *anchors;
    int n_anchors;
    struct crl **crls;          /* parsed once, judged by x509/crl.c per token */
    size_t n_crls;
    int crl_fetch;
    time_t when;
};

const char *ukey_verify_name(ukey_verify_result r)
{
    switch (r) {
    case UKEY_VERIFY_OK: return "OK";
    case UKEY_VERIFY_FORMAT: return "TOKEN_FORMAT";
    case UKEY_VERIFY_CERT_DECODE: return "CERT_DECODE";
    case UKEY_VERIFY_CERT_UNTRUSTED: return "CERT_UNTRUSTED";
    case UKEY_VERIFY_CERT_NOT_VALID: return "CERT_NOT_VALID";
    case UKEY_VERIFY_CERT_USAGE: return "CERT_USAGE";
    case UKEY_VERIFY_ALGORITHM: return "ALGORITHM_MISMATCH";
    case UKEY_VERIFY_SIGNATURE: return "SIGNATURE_INVALID";
    case UKEY_VERIFY_REVOKED: return "CERT_REVOKED";
    case UKEY_VERIFY_REVOCATION_UNKNOWN: return "REVOCATION_UNKNOWN";
    case UKEY_VERIFY_BAD_ARGUMENT: return "BAD_ARGUMENT";
    case UKEY_VERIFY_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    }
    return "UNKNOWN";
}

ukey_verify_result ukey_verifier_create(struct ukey_verifier **out)
{
    struct ukey_verifier *v;
    if (!out)
        return UKEY_VERIFY_BAD_ARGUMENT;
    if (!(*out = v = calloc(1, sizeof *v)))
        return UKEY_VERIFY_OUT_OF_MEMORY;
    if (!(v->anchors = X509_STORE_new())) {
        free(v);
        *out = NULL;
        return UKEY_VERIFY_OUT_OF_MEMORY;
    }
    return UKEY_VERIFY_OK;
}

void ukey_verifier_free(struct ukey_verifier *v)
{
    if (!v)
        return;
    X509_STORE_free(v->anchors);
    for (size_t i = 0; i < v->n_crls; i++)
        crl_free(v->crls[i]);
    free(v->crls);
    free(v);
}

ukey_verify_result ukey_verifier_add_trust_anchors(struct ukey_verifier *v, const char *pem_file)
{
    STACK_OF(X509) *certs;
    ukey_verify_result r = UKEY_VERIFY_OK;
    if (!v || !pem_file)
        return UKEY_VERIFY_BAD_ARGUMENT;
    if (!(certs = sk_X509_new_null()))
        return UKEY_VERIFY_OUT_OF_MEMORY;
    if (x509_stack_add_file(certs, pem_file) <= 0)
        r = UKEY_VERIFY_BAD_ARGUMENT;
    for (int i = 0; r == UKEY_VERIFY_OK && i < sk_X509_num(certs); i++)
        X509_STORE_add_cert(v->anchors, sk_X509_value(certs, i)); /* a duplicate is no harm */
    if (r == UKEY_VERIFY_OK)
        v->n_anchors++;
    sk_X509_pop_free(certs, X509_free);
    ERR_clear_error();
    return r;
}

ukey_verify_result ukey_verifier_add_crl(struct ukey_verifier *v, const char *crl_file)
{
    struct crl **more, *crl;
    char *bytes;
    size_t len;
    if (!v || !crl_file || !(bytes = file_read_all(crl_file, CRL_FILE_MAX, &len)))
        return UKEY_VERIFY_BAD_ARGUMENT;
    crl = crl_parse((const unsigned char *)bytes, len);
    free(bytes);
    if (!crl)
        return UKEY_VERIFY_BAD_ARGUMENT;
    if (!(more = realloc(v->crls, (v->n_crls + 1) * sizeof *more))) {
        crl_free(crl);
        return UKEY_VERIFY_OUT_OF_MEMORY;
    }
    v->crls = more;
    v->crls[v->n_crls++] = crl;
    return UKEY_VERIFY_OK;
}

void ukey_verifier_set_crl_fetch(struct ukey_verifier *v, int enabled)
{
    if (v)
        v->crl_fetch = enabled;
}

void ukey_verifier_set_time(struct ukey_verifier *v, time_t when)
{
    if (v)
        v->when = when;
}

static ukey_verify_result fail(struct ukey_verify_info *info, ukey_verify_result r, const char *fmt, ...)
    UKEY_PRINTF(3, 4);

static ukey_verify_result fail(struct ukey_verify_info *info, ukey_verify_result r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(info->detail, sizeof info->detail, fmt, ap);
    va_end(ap);
    return r;
}

/* Decodes standard Base64 into a new buffer; NULL if it is not Base64. */
static unsigned char *b64_decode(const char *in, size_t *len)
{
    size_t n = 0, inlen = strlen(in);
    unsigned char *out;
    if (inlen == 0 || mbedtls_base64_decode(NULL, 0, &n, (const unsigned char *)in, inlen) ==
                          MBEDTLS_ERR_BASE64_INVALID_CHARACTER)
        return NULL;
    if (!(out = malloc(n ? n : 1)))
        return NULL;
    if (mbedtls_base64_decode(out, n, len, (const unsigned char *)in, inlen) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* What X509_verify_cert found beyond "ok": a certificate of the chain out
 * of its validity at the verification time is noted and passed over, so
 * that an untrusted chain is named before an expired one. */
static int note_times(int ok, X509_STORE_CTX *ctx)
{
    int err = X509_STORE_CTX_get_error(ctx);
    if (ok || (err != X509_V_ERR_CERT_HAS_EXPIRED && err != X509_V_ERR_CERT_NOT_YET_VALID))
        return ok;
    *(int *)X509_STORE_CTX_get_app_data(ctx) = 1;
    return 1;
}

/* The chain from `crt` to an anchor at the verification time: OK,
 * CERT_UNTRUSTED or CERT_NOT_VALID; *issuer gets a reference to crt's
 * issuer (for the CRL check) when OK. */
static ukey_verify_result check_chain(const struct ukey_verifier *v, X509 *crt, time_t when, X509 **issuer,
                                      struct ukey_verify_info *info)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *chain;
    ukey_verify_result r;
    int not_valid = 0;

    *issuer = NULL;
    if (!ctx || !X509_STORE_CTX_init(ctx, v->anchors, crt, NULL)) {
        X509_STORE_CTX_free(ctx);
        return fail(info, UKEY_VERIFY_OUT_OF_MEMORY, "out of memory");
    }
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN);
    X509_STORE_CTX_set_time(ctx, 0, when);
    X509_STORE_CTX_set_app_data(ctx, &not_valid);
    X509_STORE_CTX_set_verify_cb(ctx, note_times);
    if (X509_verify_cert(ctx) != 1)
        r = fail(info, UKEY_VERIFY_CERT_UNTRUSTED, "no chain to a trust anchor (%s)",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    else if (not_valid)
        r = fail(info, UKEY_VERIFY_CERT_NOT_VALID, "a certificate of the chain is not valid at the verification time");
    else
        r = UKEY_VERIFY_OK;
    chain = X509_STORE_CTX_get0_chain(ctx);
    if (r == UKEY_VERIFY_OK && sk_X509_num(chain) > 1 && X509_up_ref(sk_X509_value(chain, 1)))
        *issuer = sk_X509_value(chain, 1);
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return r;
}

/* The certificate (DER) decodes and chains to an anchor at `when`: *crt
 * and *issuer (either may be NULL) belong to the caller. */
static ukey_verify_result check_cert(const struct ukey_verifier *v, const unsigned char *der, size_t der_len,
                                     time_t when, X509 **crt, X509 **issuer, struct ukey_verify_info *info)
{
    unsigned char serial[X509_SERIAL_MAX];
    size_t serial_len;
    *issuer = NULL;
    if (!(*crt = x509_from_der(der, der_len)))
        return fail(info, UKEY_VERIFY_CERT_DECODE, "the certificate is not an X.509 certificate");
    x509_name_format(X509_get_subject_name(*crt), info->subject, sizeof info->subject, NULL, 0);
    serial_len = x509_serial_raw(*crt, serial);
    for (size_t i = 0; i < serial_len && 2 * i + 2 < sizeof info->serial; i++)
        snprintf(info->serial + 2 * i, 3, "%02x", serial[i]);
    return check_chain(v, *crt, when, issuer, info);
}

/* Revocation: the CRLs given, or the one fetched from the certificate's
 * distribution point, judged by x509/crl.c: from its issuer, signed by it
 * (SM2 with the default ID), and not listing it. */
static ukey_verify_result check_revocation(const struct ukey_verifier *v, X509 *crt, X509 *issuer, time_t when,
                                           struct ukey_verify_info *info)
{
    struct crl *fetched = NULL, *const *crls = v->crls;
    size_t n = v->n_crls;
    int from_issuer = 0, trusted = 0;
    ukey_verify_result r = UKEY_VERIFY_OK;

    if (v->crl_fetch) {
        struct x509_urls urls;
        struct x509_fetch_req req = {0};
        struct x509_fetch_res res;
        if (x509_cert_urls(crt, &urls) != 0 || urls.n_crl == 0)
            return fail(info, UKEY_VERIFY_REVOCATION_UNKNOWN, "the certificate names no CRL distribution point");
        req.url = urls.crl[0];
        if (x509_fetch(&req, &res, info->detail, sizeof info->detail) != 0)
            return UKEY_VERIFY_REVOCATION_UNKNOWN;
        if (res.http_code != 200 || res.len == 0) {
            free(res.body);
            return fail(info, UKEY_VERIFY_REVOCATION_UNKNOWN, "CRL %.160s: HTTP %ld, %zu bytes", urls.crl[0],
                        res.http_code, res.len);
        }
        fetched = crl_parse(res.body, res.len);
        free(res.body);
        crls = &fetched;
        n = fetched ? 1 : 0; /* not a CRL: no CRL from the issuer */
    }
    for (size_t i = 0; i < n && r == UKEY_VERIFY_OK; i++) {
        struct crl_check c;
        crl_judge(crls[i], crt, issuer, when, &c);
        from_issuer |= c.finding != CRL_NOT_A_CRL && c.finding != CRL_OTHER_ISSUER && c.finding != CRL_NO_ISSUER;
        trusted |= c.finding == CRL_GOOD || c.finding == CRL_STALE || c.finding == CRL_FUTURE;
        if (c.finding == CRL_REVOKED)
            r = fail(info, UKEY_VERIFY_REVOKED, "the certificate is revoked");
    }
    if (r == UKEY_VERIFY_OK && !from_issuer)
        r = fail(info, UKEY_VERIFY_REVOCATION_UNKNOWN, v->crl_fetch && !issuer ? "the certificate's issuer is unknown"
                                                                             : "no CRL from the certificate's issuer");
    else if (r == UKEY_VERIFY_OK && !trusted)
        r = fail(info, UKEY_VERIFY_REVOCATION_UNKNOWN, "the CRL is not signed by the certificate's issuer");
    crl_free(fetched);
    return r;
}

ukey_verify_result ukey_verify_token(const struct ukey_verifier *v, const char *token, size_t len,
                                     const char *origin, const char *challenge,
                                     struct ukey_verify_info *info_out)
{
    struct ukey_verify_info scratch, *info = info_out ? info_out : &scratch;
    X509 *crt = NULL, *issuer = NULL;
    json_t *root = NULL;
    const char *cert_b64, *alg_name, *sig_b64, *format;
    unsigned char *der = NULL, *sig = NULL;
    size_t der_len = 0, sig_len = 0;
    enum websig_alg alg;
    time_t when;
    ukey_verify_result r;

    memset(info, 0, sizeof *info);
    if (!v || !token || !origin || !*origin || !challenge || !*challenge)
        return fail(info, UKEY_VERIFY_BAD_ARGUMENT, "verifier, token, origin and challenge are required");
    if (v->n_anchors == 0)
        return fail(info, UKEY_VERIFY_BAD_ARGUMENT, "no trust anchors configured");
    when = v->when ? v->when : time(NULL);

    /* 1. format */
    root = json_loadb(token, len, JSON_REJECT_DUPLICATES, NULL);
    cert_b64 = json_string_value(json_object_get(root, "unverifiedCertificate"));
    alg_name = json_string_value(json_object_get(root, "algorithm"));
    sig_b64 = json_string_value(json_object_get(root, "signature"));
    format = json_string_value(json_object_get(root, "format"));
    if (!json_is_object(root) || !cert_b64 || !alg_name || !sig_b64 || !format) {
        r = fail(info, UKEY_VERIFY_FORMAT, "not a JSON object with unverifiedCertificate, algorithm, signature, format");
        goto out;
    }
    if (strncmp(format, "web-eid:1", 9) != 0 || (format[9] != '\0' && format[9] != '.')) {
        r = fail(info, UKEY_VERIFY_FORMAT, "format is not web-eid:1.x");
        goto out;
    }
    snprintf(info->algorithm, sizeof info->algorithm, "%s", alg_name);
    if (!(der = b64_decode(cert_b64, &der_len)) || !(sig = b64_decode(sig_b64, &sig_len))) {
        r = fail(info, UKEY_VERIFY_FORMAT, "unverifiedCertificate or signature is not Base64");
        goto out;
    }
    /* 2. the certificate decodes, 3. chain, 4. validity at the verification time */
    if ((r = check_cert(v, der, der_len, when, &crt, &issuer, info)) != UKEY_VERIFY_OK)
        goto out;
    /* 5. usage */
    if (!x509_usable_for_login(crt)) {
        r = fail(info, UKEY_VERIFY_CERT_USAGE, "the certificate is not for digitalSignature / clientAuth");
        goto out;
    }
    /* 6. the algorithm fits the key */
    if (websig_alg_named(crt, alg_name, &alg) != 0) {
        r = fail(info, UKEY_VERIFY_ALGORITHM, "algorithm %.16s does not fit the certificate's key", alg_name);
        goto out;
    }
    /* 7. signature over hash(origin) || hash(challenge) (x509/websig.h) */
    if (!websig_verify(crt, alg, origin, challenge, sig, sig_len)) {
        r = fail(info, UKEY_VERIFY_SIGNATURE, "the signature is not over this origin and challenge");
        goto out;
    }
    /* 8. revocation, when asked for */
    r = v->n_crls || v->crl_fetch ? check_revocation(v, crt, issuer, when, info) : UKEY_VERIFY_OK;
out:
    X509_free(crt);
    X509_free(issuer);
    json_decref(root);
    free(der);
    free(sig);
    return r;
}

ukey_verify_result ukey_verify_signature(const struct ukey_verifier *v, const char *cert, size_t cert_len,
                                         const unsigned char *data, size_t data_len, const unsigned char *sig,
                                         size_t sig_len, struct ukey_verify_info *info_out)
{
    struct ukey_verify_info scratch, *info = info_out ? info_out : &scratch;
    X509 *crt = NULL, *issuer = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    enum websig_alg alg;
    time_t when;
    ukey_verify_result r;

    memset(info, 0, sizeof *info);
    if (!v || !cert || !cert_len || (!data && data_len) || !sig || !sig_len)
        return fail(info, UKEY_VERIFY_BAD_ARGUMENT, "verifier, certificate and signature are required");
    if (v->n_anchors == 0)
        return fail(info, UKEY_VERIFY_BAD_ARGUMENT, "no trust anchors configured");
    when = v->when ? v->when : time(NULL);
    /* DER starts with a SEQUENCE; anything else is read as Base64 */
    if ((unsigned char)cert[0] == 0x30)
        r = check_cert(v, (const unsigned char *)cert, cert_len, when, &crt, &issuer, info);
    else if (!(der = b64_decode(cert, &der_len)))
        r = fail(info, UKEY_VERIFY_FORMAT, "the certificate is neither DER nor Base64");
    else
        r = check_cert(v, der, der_len, when, &crt, &issuer, info);
    /* the algorithm from the key, any RSA size (old tokens have 1024 to 4096-bit keys) */
    if (r == UKEY_VERIFY_OK && websig_alg_for_key(crt, 0, &alg) != 0 && websig_alg_named(crt, "RS256", &alg) != 0)
        r = fail(info, UKEY_VERIFY_ALGORITHM, "the certificate's key is not SM2, RSA, P-256 or P-384");
    if (r == UKEY_VERIFY_OK) {
        snprintf(info->algorithm, sizeof info->algorithm, "%s", websig_name(alg));
        if (!websig_verify_data(crt, alg, data ? data : (const unsigned char *)"", data_len, sig, sig_len))
            r = fail(info, UKEY_VERIFY_SIGNATURE, "the signature is not the certificate's over these data");
        else if (v->n_crls || v->crl_fetch)
            r = check_revocation(v, crt, issuer, when, info);
    }
    X509_free(crt);
    X509_free(issuer);
    free(der);
    return r;
}
