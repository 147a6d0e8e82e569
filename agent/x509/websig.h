/*
 * The login signature of a web-eid:1.0 token (docs/PROTOCOL.md), and the
 * data signatures of POST /api/v1/sign (issue 15), for every algorithm a
 * token signs with: which algorithm fits a certificate, what the token
 * signs, and whether a signature is right. Shared by the agent (which
 * checks every signature before handing it out) and libukeyverify, so both
 * judge the bytes the same way.
 *
 * A signature is over a message M: a login's M is
 * hash(origin) || hash(challenge) with the algorithm's hash, a data
 * signature's M the data (or a CMS's signed attributes). The token signs
 *   ES256/RS256/PS256: SHA-256(M)
 *   ES384/RS384/PS384: SHA-384(M)
 *   SM2-SM3:           e = SM3(Z_A || M), Z_A with the default ID 1234567812345678
 *
 * Signatures in token form: r || s for ES and SM2-SM3 (each 32 or 48
 * bytes), the RSA signature as it is.
 */
#ifndef UKEY_X509_WEBSIG_H
#define UKEY_X509_WEBSIG_H

#include <openssl/x509.h>
#include <stddef.h>

enum websig_alg {
    WEBSIG_ES256,
    WEBSIG_ES384,
    WEBSIG_RS256,
    WEBSIG_PS256,
    WEBSIG_RS384,
    WEBSIG_PS384,
    WEBSIG_SM2_SM3,
};

#define WEBSIG_MAX_SIG 512 /* RSA-4096 */

/* The algorithm called `name` ("ES256", "SM2-SM3", ...) if it fits
 * `crt`'s key: 0, or -1 (unknown name, or another kind of key). */
int websig_alg_named(X509 *crt, const char *name, enum websig_alg *alg);

/* The algorithm the agent signs a login with for `crt`'s key (`pss`: RSA
 * keys use PS256 instead of RS256); -1 for a key it does not sign with
 * (RSA other than 2048 bits, EC curves other than P-256/P-384). */
int websig_alg_for_key(X509 *crt, int pss, enum websig_alg *alg);

/* "ES256", "SM2-SM3", ... */
const char *websig_name(enum websig_alg alg);

/* The name old plug-ins and Java give it: "SHA256withECDSA", "SM3withSM2", ... */
const char *websig_sign_name(enum websig_alg alg);

/* 1 if `name` is one of those names, 0 otherwise. */
int websig_sign_name_known(const char *name);

/* Bytes of r (and of s) in an ES/SM2 signature, 0 for RSA. */
size_t websig_ec_size(enum websig_alg alg);

/* A login's message M for `origin` and `challenge` (see above): its
 * length (64 or 96), 0 on error. */
size_t websig_login_message(enum websig_alg alg, const char *origin, const char *challenge, unsigned char m[96]);

/* What the token signs for the message `m` (see above): its length (32 or
 * 48), 0 on error. */
size_t websig_digest(X509 *crt, enum websig_alg alg, const unsigned char *m, size_t m_len, unsigned char out[64]);

/* 1 if `sig` (token form) is `crt`'s signature over `digest` (what
 * websig_digest gives), 0 otherwise. */
int websig_verify_digest(X509 *crt, enum websig_alg alg, const unsigned char *digest, size_t digest_len,
                         const unsigned char *sig, size_t sig_len);

/* 1 if `sig` (token form) is `crt`'s signature over the message `m`. SM2
 * goes through OpenSSL's own message signature check (its Z_A, the ID set
 * explicitly), so it also proves websig_digest. */
int websig_verify_message(X509 *crt, enum websig_alg alg, const unsigned char *m, size_t m_len,
                          const unsigned char *sig, size_t sig_len);

/* 1 if `sig` (token form) is `crt`'s login signature over `origin` and
 * `challenge`. */
int websig_verify(X509 *crt, enum websig_alg alg, const char *origin, const char *challenge,
                  const unsigned char *sig, size_t sig_len);

/* 1 if `sig` is `crt`'s raw signature over the bytes `data` (not a token
 * signature): RS256 PKCS#1 v1.5 over SHA-256(data); ES256/ES384 a DER
 * ECDSA-Sig-Value over SHA-256/384(data); SM2-SM3 a DER SM2Signature over
 * SM3(Z_A || data) with the default ID (GM/T 0009). */
int websig_verify_data(X509 *crt, enum websig_alg alg, const unsigned char *data, size_t len,
                       const unsigned char *sig, size_t sig_len);

#endif
