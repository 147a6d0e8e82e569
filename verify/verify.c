/*
 * libukeyverify: checks a web-eid:1.0 login token in the order of
 * include/ukey/verify.h and names the first check that fails.
 */
#include <ukey/verify.h>

#include "x509/ext.h"
#include "x509/fetch.h"
#include "x509/name.h"
#include "x509/sigenc.h"
#include "x509/xtime.h"

#include <jansson.h>
#include <mbedtls/asn1.h>
#include <mbedtls/base64.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ukey_verifier {
    mbedtls_x509_crt anchors;
    int n_anchors;
    mbedtls_x509_crl crls;
    int n_crls;
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
    mbedtls_x509_crt_init(&v->anchors);
    mbedtls_x509_crl_init(&v->crls);
    return UKEY_VERIFY_OK;
}

void ukey_verifier_free(struct ukey_verifier *v)
{
    if (!v)
        return;
    mbedtls_x509_crt_free(&v->anchors);
    mbedtls_x509_crl_free(&v->crls);
    free(v);
}

ukey_verify_result ukey_verifier_add_trust_anchors(struct ukey_verifier *v, const char *pem_file)
{
    if (!v || !pem_file || mbedtls_x509_crt_parse_file(&v->anchors, pem_file) != 0)
        return UKEY_VERIFY_BAD_ARGUMENT;
    v->n_anchors++;
    return UKEY_VERIFY_OK;
}

ukey_verify_result ukey_verifier_add_crl(struct ukey_verifier *v, const char *crl_file)
{
    if (!v || !crl_file || mbedtls_x509_crl_parse_file(&v->crls, crl_file) != 0)
        return UKEY_VERIFY_BAD_ARGUMENT;
    v->n_crls++;
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
    __attribute__((format(printf, 3, 4)));

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

struct chain_check {
    time_t when;
    int not_valid;
};

/* mbedTLS checks validity against the real clock; we check every
 * certificate of the chain against the verification time instead. */
static int check_times(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    struct chain_check *cc = arg;
    (void)depth;
    *flags &= ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE |
                          MBEDTLS_X509_BADCRL_EXPIRED | MBEDTLS_X509_BADCRL_FUTURE);
    if (cc->when < x509_time_utc(&crt->valid_from) || cc->when > x509_time_utc(&crt->valid_to))
        cc->not_valid = 1;
    return 0;
}

/* Fetches the CRL at `url` into `crl`; 0 or -1 (with detail). */
static int fetch_crl(const char *url, mbedtls_x509_crl *crl, struct ukey_verify_info *info)
{
    struct x509_fetch_req req = {.url = url};
    struct x509_fetch_res res;
    int ok = -1;
    if (x509_fetch(&req, &res, info->detail, sizeof info->detail) != 0)
        return -1;
    if (res.http_code != 200 || res.len == 0)
        snprintf(info->detail, sizeof info->detail, "CRL %.160s: HTTP %ld, %zu bytes", url, res.http_code, res.len);
    else if (mbedtls_x509_crl_parse(crl, res.body, res.len + (res.body[0] == '-' ? 1 : 0)) != 0)
        snprintf(info->detail, sizeof info->detail, "CRL %.160s: not a CRL", url);
    else
        ok = 0;
    free(res.body);
    return ok;
}

/* Revocation: the CRLs given, or the one fetched from the certificate's
 * distribution point, must come from its issuer and not list it. */
static ukey_verify_result check_revocation(const struct ukey_verifier *v, mbedtls_x509_crt *crt,
                                           struct ukey_verify_info *info)
{
    struct chain_check cc = {v->when ? v->when : time(NULL), 0};
    mbedtls_x509_crl fetched, *crls = (mbedtls_x509_crl *)&v->crls;
    ukey_verify_result r = UKEY_VERIFY_OK;
    int have_issuer_crl = 0;
    uint32_t flags = 0;
    struct x509_urls urls;

    mbedtls_x509_crl_init(&fetched);
    if (v->crl_fetch) {
        if (x509_cert_urls(crt, &urls) != 0 || urls.n_crl == 0) {
            mbedtls_x509_crl_free(&fetched);
            return fail(info, UKEY_VERIFY_REVOCATION_UNKNOWN, "the certificate names no CRL distribution point");
        }
        if (fetch_crl(urls.crl[0], &fetched, info) != 0) {
            mbedtls_x509_crl_free(&fetched);
            return UKEY_VERIFY_REVOCATION_UNKNOWN;
        }
        crls = &fetched;
    }
    for (const mbedtls_x509_crl *c = crls; c && c->version; c = c->next)
        have_issuer_crl |= c->issuer_raw.len == crt->issuer_raw.len &&
                           memcmp(c->issuer_raw.p, crt->issuer_raw.p, crt->issuer_raw.len) == 0;
    if (!have_issuer_crl)
        r = fail(info, UKEY_VERIFY_REVOCATION_UNKNOWN, "no CRL from the certificate's issuer");
    else if (mbedtls_x509_crt_verify(crt, (mbedtls_x509_crt *)&v->anchors, crls, NULL, &flags, check_times, &cc) != 0 &&
             (flags & MBEDTLS_X509_BADCERT_REVOKED))
        r = fail(info, UKEY_VERIFY_REVOKED, "the certificate is revoked");
    else if (flags & MBEDTLS_X509_BADCRL_NOT_TRUSTED)
        r = fail(info, UKEY_VERIFY_REVOCATION_UNKNOWN, "the CRL is not signed by the certificate's issuer");
    mbedtls_x509_crl_free(&fetched);
    return r;
}

/* Hash for the algorithm label, and whether it fits the key. */
static int algorithm_for_key(const char *alg, const mbedtls_pk_context *pk, mbedtls_md_type_t *md, int *pss,
                             size_t *ec_n)
{
    int rsa = mbedtls_pk_get_type(pk) == MBEDTLS_PK_RSA, ec = mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY;
    mbedtls_ecp_group_id gid = ec ? mbedtls_pk_ec(*pk)->grp.id : MBEDTLS_ECP_DP_NONE;
    *pss = 0;
    *ec_n = 0;
    if (strcmp(alg, "ES256") == 0 && gid == MBEDTLS_ECP_DP_SECP256R1)
        return *md = MBEDTLS_MD_SHA256, *ec_n = 32, 0;
    if (strcmp(alg, "ES384") == 0 && gid == MBEDTLS_ECP_DP_SECP384R1)
        return *md = MBEDTLS_MD_SHA384, *ec_n = 48, 0;
    if (rsa && (strcmp(alg, "RS256") == 0 || strcmp(alg, "PS256") == 0))
        return *md = MBEDTLS_MD_SHA256, *pss = alg[0] == 'P', 0;
    if (rsa && (strcmp(alg, "RS384") == 0 || strcmp(alg, "PS384") == 0))
        return *md = MBEDTLS_MD_SHA384, *pss = alg[0] == 'P', 0;
    return -1;
}

ukey_verify_result ukey_verify_token(const struct ukey_verifier *v, const char *token, size_t len,
                                     const char *origin, const char *challenge,
                                     struct ukey_verify_info *info_out)
{
    struct ukey_verify_info scratch, *info = info_out ? info_out : &scratch;
    struct chain_check cc;
    mbedtls_x509_crt crt;
    json_t *root = NULL;
    const char *cert_b64, *alg, *sig_b64, *format;
    unsigned char *der = NULL, *sig = NULL, tbs[128], digest[64], sig_der[160];
    size_t der_len = 0, sig_len = 0, hlen, ec_n;
    mbedtls_md_type_t md;
    uint32_t flags = 0;
    int pss, rc;
    ukey_verify_result r;

    memset(info, 0, sizeof *info);
    mbedtls_x509_crt_init(&crt);
    if (!v || !token || !origin || !*origin || !challenge || !*challenge)
        return fail(info, UKEY_VERIFY_BAD_ARGUMENT, "verifier, token, origin and challenge are required");
    if (v->n_anchors == 0)
        return fail(info, UKEY_VERIFY_BAD_ARGUMENT, "no trust anchors configured");

    /* 1. format */
    root = json_loadb(token, len, JSON_REJECT_DUPLICATES, NULL);
    cert_b64 = json_string_value(json_object_get(root, "unverifiedCertificate"));
    alg = json_string_value(json_object_get(root, "algorithm"));
    sig_b64 = json_string_value(json_object_get(root, "signature"));
    format = json_string_value(json_object_get(root, "format"));
    if (!json_is_object(root) || !cert_b64 || !alg || !sig_b64 || !format) {
        r = fail(info, UKEY_VERIFY_FORMAT, "not a JSON object with unverifiedCertificate, algorithm, signature, format");
        goto out;
    }
    if (strncmp(format, "web-eid:1", 9) != 0 || (format[9] != '\0' && format[9] != '.')) {
        r = fail(info, UKEY_VERIFY_FORMAT, "format is not web-eid:1.x");
        goto out;
    }
    snprintf(info->algorithm, sizeof info->algorithm, "%s", alg);
    if (!(der = b64_decode(cert_b64, &der_len)) || !(sig = b64_decode(sig_b64, &sig_len))) {
        r = fail(info, UKEY_VERIFY_FORMAT, "unverifiedCertificate or signature is not Base64");
        goto out;
    }
    /* 2. the certificate decodes */
    if (mbedtls_x509_crt_parse_der(&crt, der, der_len) != 0) {
        r = fail(info, UKEY_VERIFY_CERT_DECODE, "unverifiedCertificate is not an X.509 certificate");
        goto out;
    }
    x509_name_format(&crt.subject, info->subject, sizeof info->subject, NULL, 0);
    for (size_t i = 0; i < crt.serial.len && 2 * i + 2 < sizeof info->serial; i++)
        snprintf(info->serial + 2 * i, 3, "%02x", crt.serial.p[i]);
    /* 3. chain, 4. validity at the verification time */
    cc.when = v->when ? v->when : time(NULL);
    cc.not_valid = 0;
    rc = mbedtls_x509_crt_verify(&crt, (mbedtls_x509_crt *)&v->anchors, NULL, NULL, &flags, check_times, &cc);
    if (rc != 0 && flags != 0) {
        r = fail(info, UKEY_VERIFY_CERT_UNTRUSTED, "no chain to a trust anchor (flags 0x%x)", (unsigned)flags);
        goto out;
    }
    if (cc.not_valid) {
        r = fail(info, UKEY_VERIFY_CERT_NOT_VALID, "a certificate of the chain is not valid at the verification time");
        goto out;
    }
    /* 5. usage */
    if (mbedtls_x509_crt_check_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0 ||
        mbedtls_x509_crt_check_extended_key_usage(&crt, MBEDTLS_OID_CLIENT_AUTH,
                                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)) != 0) {
        r = fail(info, UKEY_VERIFY_CERT_USAGE, "the certificate is not for digitalSignature / clientAuth");
        goto out;
    }
    /* 6. the algorithm fits the key */
    if (algorithm_for_key(alg, &crt.pk, &md, &pss, &ec_n) != 0) {
        r = fail(info, UKEY_VERIFY_ALGORITHM, "algorithm %.16s does not fit the certificate's key", alg);
        goto out;
    }
    /* 7. signature over hash(origin) || hash(challenge) */
    hlen = sigenc_hash(md, (const unsigned char *)origin, strlen(origin), tbs);
    sigenc_hash(md, (const unsigned char *)challenge, strlen(challenge), tbs + hlen);
    sigenc_hash(md, tbs, 2 * hlen, digest);
    if (ec_n) {
        int n = sig_len == 2 * ec_n ? sigenc_ecdsa_raw_to_der(sig, ec_n, sig_der, sizeof sig_der) : -1;
        rc = n < 0 ? -1 : mbedtls_pk_verify(&crt.pk, md, digest, hlen, sig_der, (size_t)n);
    } else if (pss) {
        mbedtls_pk_rsassa_pss_options opts = {md, (int)hlen};
        rc = mbedtls_pk_verify_ext(MBEDTLS_PK_RSASSA_PSS, &opts, &crt.pk, md, digest, hlen, sig, sig_len);
    } else {
        rc = mbedtls_pk_verify(&crt.pk, md, digest, hlen, sig, sig_len);
    }
    if (rc != 0) {
        r = fail(info, UKEY_VERIFY_SIGNATURE, "the signature is not over this origin and challenge");
        goto out;
    }
    /* 8. revocation, when asked for */
    r = v->n_crls || v->crl_fetch ? check_revocation(v, &crt, info) : UKEY_VERIFY_OK;
out:
    mbedtls_x509_crt_free(&crt);
    json_decref(root);
    free(der);
    free(sig);
    return r;
}
