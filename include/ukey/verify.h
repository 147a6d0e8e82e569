/*
 * libukeyverify: server-side verification of the login tokens ukey-agent
 * produces (Web eID format "web-eid:1.0"), for a portal's back end.
 *
 *   struct ukey_verifier *v;
 *   ukey_verifier_create(&v);
 *   ukey_verifier_add_trust_anchors(v, "/etc/portal/ca.pem");
 *   struct ukey_verify_info info;
 *   ukey_verify_result r = ukey_verify_token(v, token_json, len,
 *                              "https://portal.example.gov.cn", challenge, &info);
 *   if (r != UKEY_VERIFY_OK) refuse(ukey_verify_name(r), info.detail);
 *
 * A verifier is configured once and then only read: one verifier may serve
 * any number of threads at the same time. The library keeps no global state.
 */
#ifndef UKEY_VERIFY_H
#define UKEY_VERIFY_H

#include <stddef.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The first check that failed, in the order they run. Append-only. */
typedef enum {
    UKEY_VERIFY_OK = 0,
    UKEY_VERIFY_FORMAT,             /* not a web-eid:1.0 token (JSON, members, Base64) */
    UKEY_VERIFY_CERT_DECODE,        /* unverifiedCertificate is not a certificate */
    UKEY_VERIFY_CERT_UNTRUSTED,     /* no chain to a configured trust anchor */
    UKEY_VERIFY_CERT_NOT_VALID,     /* expired or not yet valid at the verification time */
    UKEY_VERIFY_CERT_USAGE,         /* no digitalSignature, or an EKU without clientAuth */
    UKEY_VERIFY_ALGORITHM,          /* the algorithm is unsupported or does not fit the key */
    UKEY_VERIFY_SIGNATURE,          /* the signature is not over hash(origin)||hash(challenge) */
    UKEY_VERIFY_REVOKED,            /* the certificate is on a CRL */
    UKEY_VERIFY_REVOCATION_UNKNOWN, /* revocation was asked for but could not be decided */
    UKEY_VERIFY_BAD_ARGUMENT,       /* a NULL or empty argument, an unusable file */
    UKEY_VERIFY_OUT_OF_MEMORY,
} ukey_verify_result;

struct ukey_verifier;

/* What a successful (or failed) verification found. */
struct ukey_verify_info {
    char subject[512];      /* subject DN, UTF-8 */
    char serial[80];        /* certificate serial, hex */
    char algorithm[8];      /* "ES256", ... */
    char detail[256];       /* English detail of a failure */
};

ukey_verify_result ukey_verifier_create(struct ukey_verifier **out);
void ukey_verifier_free(struct ukey_verifier *v);

/* Trust anchors (PEM, one or more certificates). Call once or more. */
ukey_verify_result ukey_verifier_add_trust_anchors(struct ukey_verifier *v, const char *pem_file);
/* A CRL (PEM or DER) to check certificates against; implies revocation checking. */
ukey_verify_result ukey_verifier_add_crl(struct ukey_verifier *v, const char *crl_file);
/* Fetch the CRL named in the certificate's CRL distribution point (http/https)
 * with libcurl during verification; no CRL reachable = REVOCATION_UNKNOWN. */
void ukey_verifier_set_crl_fetch(struct ukey_verifier *v, int enabled);
/* The time certificates must be valid at; 0 (the default) means now. */
void ukey_verifier_set_time(struct ukey_verifier *v, time_t when);

/*
 * Verifies `token` (its JSON text, `len` bytes) for the site `origin` (the
 * portal's own configured origin, e.g. "https://portal.example.gov.cn") and
 * the challenge it issued for this login (its Base64 text). `info` may be
 * NULL. Returns UKEY_VERIFY_OK or the first failed check.
 */
ukey_verify_result ukey_verify_token(const struct ukey_verifier *v, const char *token, size_t len,
                                     const char *origin, const char *challenge,
                                     struct ukey_verify_info *info);

/*
 * Verifies a raw signature `sig` (DER for SM2 and ECDSA) over `data` made
 * by the key of `cert` (DER, or its Base64 text; `cert_len` bytes) the way
 * the old plug-ins' back ends do: chain to the anchors, validity, CRLs as
 * configured, and the signature with the key's algorithm: SM2 ->
 * SM3withSM2 with the default ID 1234567812345678, RSA -> SHA256withRSA
 * (PKCS#1 v1.5), P-256/P-384 -> ECDSA with SHA-256/SHA-384. Not bound to
 * an origin. info->algorithm gets "SM2-SM3", "RS256", "ES256", "ES384".
 */
ukey_verify_result ukey_verify_signature(const struct ukey_verifier *v, const char *cert, size_t cert_len,
                                         const unsigned char *data, size_t data_len, const unsigned char *sig,
                                         size_t sig_len, struct ukey_verify_info *info);

/* Stable name of a result, e.g. "SIGNATURE_INVALID". */
const char *ukey_verify_name(ukey_verify_result r);

#ifdef __cplusplus
}
#endif

#endif
