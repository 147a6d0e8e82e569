/*
 * Revocation plumbing shared by the agent's diagnostics and libukeyverify:
 * the certificate's CRL distribution point (RFC 5280 4.2.1.13, which mbedTLS
 * does not parse) and a bounded HTTP(S) GET through libcurl.
 */
#ifndef UKEY_X509_FETCH_H
#define UKEY_X509_FETCH_H

#include <mbedtls/x509_crt.h>
#include <stddef.h>
#include <time.h>

#define X509_FETCH_MAX (8u * 1024 * 1024)

/* The first http(s) URI of the CRL distribution points; 0, or -1 if none. */
int x509_crl_url(const mbedtls_x509_crt *crt, char *url, size_t cap);

/*
 * GETs `url` (http/https only, at most X509_FETCH_MAX bytes, 5 s to connect,
 * 15 s in all, 3 redirects, proxies from the environment). Returns 0 with a
 * malloc'd, NUL-terminated body (*len bytes) and *http_code, and (when
 * `date` is not NULL) the server's Date header as time_t (0 if it sent
 * none); or -1 with a reason in `err`.
 */
int x509_fetch(const char *url, unsigned char **body, size_t *len, long *http_code, time_t *date, char *err,
               size_t errlen);

#endif
