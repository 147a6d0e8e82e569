/*
 * Where a certificate says its revocation status and its issuer can be
 * found: the CRL distribution points (RFC 5280 4.2.1.13) and the Authority
 * Information Access OCSP and caIssuers locations (4.2.2.1), read from the
 * extensions' DER with bounds on every length. Only http:// and https:// URIs are returned. Shared by
 * the agent and libukeyverify.
 */
#ifndef UKEY_X509_EXT_H
#define UKEY_X509_EXT_H

#include <openssl/x509.h>
#include <stddef.h>

#define X509_URLS_MAX 4
#define X509_URL_LEN 512

struct x509_urls {
    char crl[X509_URLS_MAX][X509_URL_LEN];
    char ocsp[X509_URLS_MAX][X509_URL_LEN];
    char ca_issuers[X509_URLS_MAX][X509_URL_LEN];
    size_t n_crl, n_ocsp, n_ca_issuers;
};

/* Fills `out` (the first X509_URLS_MAX of each kind; longer URIs and other
 * schemes are left out). 0, or -1 when the extensions are malformed (what
 * was read before the fault is kept). */
int x509_cert_urls(X509 *crt, struct x509_urls *out);

/* Walks the extensions inside an Extensions SEQUENCE (its contents are
 * [*p, end)): each call gives the next one's OID and extnValue contents
 * and moves *p past it. 1 while there is one, 0 at the end, -1 if
 * malformed. Used for certificates' and OCSP answers' extensions. */
int x509_ext_next(unsigned char **p, const unsigned char *end, unsigned char **oid, size_t *oid_len,
                  unsigned char **value, size_t *value_len);

#endif
