/* Certificate facts for the API and diagnostics, from DER via mbedTLS. */
#ifndef UKEY_X509_CERT_H
#define UKEY_X509_CERT_H

#include <jansson.h>
#include <mbedtls/x509_crt.h>
#include <stddef.h>

/*
 * Sets the naming facts of a parsed certificate on `obj`: subject,
 * subject_cn (when the subject has a CN), issuer (UTF-8, RFC 4514 order as
 * stored), serial (hex), not_before, not_after (ISO 8601 UTC). Returns 0,
 * or -1 when out of memory.
 */
int x509_cert_facts(const mbedtls_x509_crt *crt, json_t *obj);

/*
 * Describes a DER certificate: the facts above, key_type ("EC"/"RSA"), key_size (bits), key_usage and ext_key_usage
 * (names), der (base64). Returns a new object, or NULL when the bytes are
 * not a certificate mbedTLS can parse.
 */
json_t *x509_cert_json(const unsigned char *der, size_t len);

#endif
