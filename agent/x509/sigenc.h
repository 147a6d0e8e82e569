/*
 * Signature encodings done on the host because a smart card signs raw:
 * EMSA-PKCS1-v1_5 and EMSA-PSS blocks for RSA (RFC 8017 9.2, 9.1.1), and
 * ECDSA's DER ECDSA-Sig-Value <-> the raw r||s of JOSE (RFC 7518 3.4).
 */
#ifndef UKEY_X509_SIGENC_H
#define UKEY_X509_SIGENC_H

#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <stddef.h>

/* Hash of `in` with `md`; returns the digest length (0 on error). */
size_t sigenc_hash(mbedtls_md_type_t md, const unsigned char *in, size_t len, unsigned char out[64]);

#define SIGENC_DIGEST_INFO_MAX (19 + 48)

/* The DER DigestInfo of a SHA-256 or SHA-384 digest (what a token that pads
 * PKCS#1 v1.5 itself signs); returns its length, 0 for another hash. */
size_t sigenc_digest_info(mbedtls_md_type_t md, const unsigned char *digest, unsigned char out[SIGENC_DIGEST_INFO_MAX]);

/* EM = 00 01 FF.. 00 DigestInfo(md) digest, `k` bytes (the modulus size). 0 or -1. */
int sigenc_pkcs1_v15(mbedtls_md_type_t md, const unsigned char *digest, size_t k, unsigned char *em);

/* EMSA-PSS with MGF1(md) and a salt as long as the digest, for a modulus of
 * `bits` bits; `em` gets k = ceil(bits/8) bytes. 0 or -1. */
int sigenc_pss(mbedtls_md_type_t md, const unsigned char *digest, size_t bits,
               int (*f_rng)(void *, unsigned char *, size_t), void *p_rng, unsigned char *em);

/* DER ECDSA-Sig-Value -> r||s, each `n` bytes (32 for P-256, 48 for P-384). 0 or -1. */
int sigenc_ecdsa_der_to_raw(const unsigned char *der, size_t len, size_t n, unsigned char *raw);

/* r||s (2n bytes) -> DER into out (capacity cap); returns the DER length or -1. */
int sigenc_ecdsa_raw_to_der(const unsigned char *raw, size_t n, unsigned char *out, size_t cap);

#endif
