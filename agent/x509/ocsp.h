/*
 * OCSP (RFC 6960) for one certificate: the request, and the checks on the
 * answer: a successful basic response, signed by the issuer or by a
 * responder the issuer delegated to (id-kp-OCSPSigning), about this
 * certificate, fresh, and carrying our nonce back when it carries one
 * (RFC 8954). Any signature algorithm the certificate layer checks (SM2
 * with the default ID included). Shared by the agent's diagnostics.
 */
#ifndef UKEY_X509_OCSP_H
#define UKEY_X509_OCSP_H

#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

#define OCSP_NONCE_LEN 16
/* How far this computer's clock may be off the responder's (seconds). */
#define OCSP_CLOCK_SLACK 300

enum ocsp_status { OCSP_GOOD, OCSP_REVOKED, OCSP_UNKNOWN };

struct ocsp_result {
    enum ocsp_status status;
    time_t produced_at, this_update, next_update, revoked_at; /* 0 when absent */
    int nonce_matched;          /* 1: our nonce came back; 0: the responder sent none */
    int delegated;              /* 1: signed by a delegated responder */
};

/* DER OCSPRequest for `crt` issued by `issuer` (SHA-1 CertID, as
 * responders expect), with the nonce extension when `nonce` is not NULL.
 * 0 with the request at the END of buf[0..cap) ((*out, *len)), or -1. */
int ocsp_request(X509 *crt, X509 *issuer, const unsigned char nonce[OCSP_NONCE_LEN], unsigned char *buf, size_t cap,
                 unsigned char **out, size_t *len);

/* Checks a DER OCSPResponse for `crt`/`issuer` at time `now`. `nonce` is
 * what the request carried (NULL for none). 0 with `res` filled, or -1 with
 * the reason in `err`. */
int ocsp_check(const unsigned char *der, size_t len, X509 *crt, X509 *issuer,
               const unsigned char nonce[OCSP_NONCE_LEN], time_t now, struct ocsp_result *res, char *err, size_t errlen);

#endif
