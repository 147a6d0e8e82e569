/* Certificate facts for the API and diagnostics. */
#ifndef UKEY_X509_CERT_H
#define UKEY_X509_CERT_H

#include "x509/crt.h"

#include <jansson.h>
#include <openssl/x509.h>
#include <stddef.h>

/*
 * Sets the naming facts of a certificate on `obj`: subject, subject_cn
 * (when the subject has a CN), issuer (UTF-8, in stored order), serial
 * (hex), not_before, not_after (ISO 8601 UTC). Returns 0, or -1 when out
 * of memory.
 */
int x509_cert_facts(X509 *crt, json_t *obj);

/*
 * Describes a DER certificate: the facts above, key_type ("RSA", "EC" or
 * "SM2"), key_size (bits), key_usage and ext_key_usage (names),
 * signature_algorithm ("SM2-with-SM3", "sha256WithRSAEncryption", ...) and
 * der (base64). Returns a new object, or NULL when the bytes are not a
 * certificate.
 */
json_t *x509_cert_json(const unsigned char *der, size_t len);

/*
 * What a token driver needs to know of a certificate it found: whether it
 * is a CA certificate (not a user's) and whether it may sign (keyUsage
 * digitalSignature or none). 0, or -1 when `der` is not a certificate.
 */
int x509_cert_role(const unsigned char *der, size_t len, int *is_ca, int *can_sign);

/*
 * 1 if `der` is one certificate whose public key is the one a token
 * reported (an SKF library's public-key blob): for X509_KEY_SM2, `a` is
 * x || y (64 bytes) and `b` unused; for X509_KEY_RSA, `a` the modulus and
 * `b` the public exponent (big-endian, leading zeros allowed) and the key
 * must be 2048 bits. *can_sign as in x509_cert_role. 0 otherwise.
 */
int x509_cert_key_is(const unsigned char *der, size_t len, enum x509_key_kind kind, const unsigned char *a,
                     size_t a_len, const unsigned char *b, size_t b_len, int *can_sign);

#endif
