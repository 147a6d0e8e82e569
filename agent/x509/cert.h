/* Certificate facts for the API and diagnostics, from DER via mbedTLS. */
#ifndef UKEY_X509_CERT_H
#define UKEY_X509_CERT_H

#include <jansson.h>
#include <stddef.h>

/*
 * Describes a DER certificate: subject, subject_cn, issuer (UTF-8, RFC 4514
 * order as stored), serial (hex), not_before, not_after (ISO 8601 UTC),
 * key_type ("EC"/"RSA"), key_size (bits), key_usage and ext_key_usage
 * (names), der (base64). Returns a new object, or NULL when the bytes are
 * not a certificate mbedTLS can parse.
 */
json_t *x509_cert_json(const unsigned char *der, size_t len);

#endif
