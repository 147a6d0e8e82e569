/*
 * SM2 signatures (GM/T 0003.2, GB/T 32918.2) as a token signs them: the
 * host computes e = SM3(Z_A || M), the token signs e. OpenSSL computes Z_A
 * only inside its own message signing, so it is made here from the key,
 * the fixed curve sm2p256v1 and the default ID (GM/T 0009 10):
 *
 *   Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A)
 *
 * ENTL_A is the ID's length in bits (2 bytes, big-endian); every field
 * element is 32 bytes, big-endian.
 */
#ifndef UKEY_X509_SM2_H
#define UKEY_X509_SM2_H

#include <openssl/evp.h>
#include <stddef.h>

/* Z_A of the SM2 public key `key` with the default ID. 0 or -1. */
int sm2_z(EVP_PKEY *key, unsigned char z[32]);

/* e = SM3(Z_A || m) for `key`. 0 or -1. */
int sm2_e(EVP_PKEY *key, const unsigned char *m, size_t m_len, unsigned char e[32]);

/* SM3 of `in`. 0 or -1. */
int sm3(const void *in, size_t len, unsigned char out[32]);

/* The SM2 public key 04 || x || y (65 bytes) as an EVP_PKEY; NULL if it
 * is not a point of the curve. EVP_PKEY_free() it. */
EVP_PKEY *sm2_key_from_point(const unsigned char point[65]);

#endif
