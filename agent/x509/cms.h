/*
 * A CMS (RFC 5652) / PKCS#7 SignedData built around a signature the token
 * makes: one signer, the signer's certificate included, signed attributes
 * contentType, signingTime, messageDigest. The algorithm follows the
 * certificate's key: RSA -> sha256 + rsaEncryption (PKCS#1 v1.5); P-256 ->
 * sha256 + ecdsa-with-SHA256; P-384 -> sha384 + ecdsa-with-SHA384; SM2 ->
 * GM/T 0010 (SM3, SM2-with-SM3, the GM/T 0010 data/signedData OIDs).
 *
 * Issue 15 (POST /api/v1/sign, formats "cms" and "cms-attached"). The
 * builder takes no untrusted input beyond the certificate (already parsed)
 * and the data bytes, which it only hashes and copies.
 */
#ifndef UKEY_X509_CMS_H
#define UKEY_X509_CMS_H

#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

struct cms_signed;

/* NULL on a NULL/empty input, a key that is not RSA/P-256/P-384/SM2, or
 * no memory. `attached` puts the data into the encapsulated content. */
struct cms_signed *cms_begin(X509 *signer, const unsigned char *data, size_t len, int attached, time_t now);

/* The DER the token signs (the signed attributes as a SET, tag 0x31) as a message:
 * the caller hashes it with the key's algorithm (SM2: e = SM3(Z_A || it)). */
const unsigned char *cms_to_sign(const struct cms_signed *c, size_t *len);

/* The DER ContentInfo with `sig` (RSA: the signature; ECDSA/SM2: DER SEQUENCE{r,s}). 0 on success; *der malloc'd. */
int cms_finish(struct cms_signed *c, const unsigned char *sig, size_t sig_len, unsigned char **der, size_t *der_len);

void cms_free(struct cms_signed *c);

#endif
