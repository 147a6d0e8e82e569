/*
 * The certificate layer's door to libcrypto (OpenSSL 3.0). Every
 * certificate, CRL and OCSP answer the agent and libukeyverify judge, of
 * any algorithm (RSA, ECDSA, SM2-with-SM3), is read and verified through
 * this folder, so the chain, CRL and OCSP judgements exist once.
 *
 * SM2 (GM/T 0003, GM/T 0009): a signature covers e = SM3(Z_A || M), where
 * Z_A hashes a distinguishing ID. The standard's default ID is
 * "1234567812345678"; OpenSSL 3.0's is empty (openssl#23162), so every SM2
 * check here sets it explicitly: on each SM2-signed certificate as it is
 * read (X509_verify and X509_verify_cert then use it at every level of a
 * chain) and on each CRL, OCSP and login signature check.
 *
 * OpenSSL's headers are included only here in agent/x509/, in
 * agent/diag/ (the certificate checks) and in verify/ (libukeyverify);
 * elsewhere (the login, the certificate-check endpoint) an X509 is a handle
 * passed to the functions of this folder, and token drivers use
 * x509/cert.h's DER-in, facts-out functions.
 */
#ifndef UKEY_X509_CRT_H
#define UKEY_X509_CRT_H

#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

#define X509_SM2_DEFAULT_ID "1234567812345678"
#define X509_SERIAL_MAX 32 /* RFC 5280 4.1.2.2: at most 20 octets; a little room for bad ones */

/* A certificate from DER, ready for SM2 checks; NULL if the bytes are not
 * exactly one certificate. X509_free() it. */
X509 *x509_from_der(const unsigned char *der, size_t len);

/* Adds the certificates in `data` (one or more PEM blocks, or one DER
 * certificate) to `sk`. Returns how many were added; -1 when none could be
 * read or memory ran out. */
int x509_stack_add(STACK_OF(X509) *sk, const unsigned char *data, size_t len);
/* The same from a file, and from every file of a directory (files that
 * hold no certificate, such as a README, are passed over). */
int x509_stack_add_file(STACK_OF(X509) *sk, const char *path);
int x509_stack_add_dir(STACK_OF(X509) *sk, const char *dir);

/* The DER of `c` into a new buffer (OPENSSL_free it); its length, or -1. */
int x509_der(X509 *c, unsigned char **der);

enum x509_key_kind { X509_KEY_OTHER, X509_KEY_RSA, X509_KEY_P256, X509_KEY_P384, X509_KEY_SM2 };

/* The kind of `c`'s public key, and its size in bits (0 if unknown). */
enum x509_key_kind x509_key_kind(X509 *c, int *bits);

/*
 * 1 if `key` verifies `sig` (the BIT STRING's contents, no unused bits)
 * over the DER `tbs` with the signature algorithm `alg` (a DER
 * AlgorithmIdentifier): what certificates, CRLs and OCSP answers carry.
 * SM2 keys are checked with the default ID. 0 otherwise.
 */
int x509_signature_ok(EVP_PKEY *key, const unsigned char *alg, size_t alg_len, const unsigned char *sig,
                      size_t sig_len, const unsigned char *tbs, size_t tbs_len);

/* 1 if `issuer`'s subject is `c`'s issuer and its key verifies `c`. */
int x509_issued(X509 *issuer, X509 *c);

/* 1 if `c` may make digital signatures (keyUsage digitalSignature, or no
 * keyUsage); x509_usable_for_login adds "no EKU, or one with clientAuth
 * or anyExtendedKeyUsage" (a login certificate, issue 4). */
int x509_can_sign(X509 *c);
int x509_usable_for_login(X509 *c);

/* 1 if `c` is a CA certificate (basicConstraints cA). */
int x509_is_ca(X509 *c);

/* The serial number's content octets exactly as in the DER INTEGER (a
 * leading 00 kept): its length, 0 if it does not fit. */
size_t x509_serial_raw(X509 *c, unsigned char out[X509_SERIAL_MAX]);

/* A certificate or CRL time as time_t (UTC); 0 if NULL or malformed. */
time_t x509_time_utc(const ASN1_TIME *t);

#endif
