/*
 * A CRL judged for one certificate (RFC 5280 6.3): parsed (DER, or PEM
 * terminated by a NUL at body[len]), issued and signed by the certificate's
 * issuer (any algorithm: SM2 with the default ID), fresh, and listing the
 * certificate or not. No network: the caller
 * fetched the bytes (diag/certs.c).
 */
#ifndef UKEY_X509_CRL_H
#define UKEY_X509_CRL_H

#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

#define CRL_SLACK_S 300 /* seconds a server's clock may be off ours */

enum crl_finding {
    CRL_NOT_A_CRL,      /* the bytes are no CRL */
    CRL_NO_ISSUER,      /* parsed, but the certificate's issuer is unknown: not verifiable */
    CRL_OTHER_ISSUER,   /* issued by someone else */
    CRL_BAD_SIGNATURE,  /* the issuer's key does not verify it */
    CRL_REVOKED,        /* verified, and it lists the certificate (revoked_at) */
    CRL_FUTURE,         /* verified, but dated after now */
    CRL_STALE,          /* verified, but its next update is past */
    CRL_GOOD,           /* verified, fresh, and the certificate is not listed */
};

struct crl_check {
    enum crl_finding finding;
    time_t this_update, next_update; /* 0 when absent or not parsed */
    time_t revoked_at;
};

/* A parsed CRL and the DER its signature covers. */
struct crl;

/* Parses a CRL (DER, or PEM); NULL if the bytes are no CRL (or out of
 * memory). crl_free() it. A portal's verifier parses its CRLs once. */
struct crl *crl_parse(const unsigned char *body, size_t len);
void crl_free(struct crl *crl);

/* Judges a parsed CRL for `crt` issued by `issuer` (NULL: unknown) at
 * `now`. Read-only: one CRL may be judged from many threads at once. */
void crl_judge(const struct crl *crl, X509 *crt, X509 *issuer, time_t now, struct crl_check *out);

/* crl_parse, crl_judge and crl_free in one (CRL_NOT_A_CRL if it does not parse). */
void crl_check(const unsigned char *body, size_t len, X509 *crt, X509 *issuer, time_t now, struct crl_check *out);

#endif
