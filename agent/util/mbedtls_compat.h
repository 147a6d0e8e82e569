/*
 * The one place that knows the difference between mbedTLS 2.28 (Debian 12)
 * and 3.6 LTS (what releases should use). Everything else calls these.
 */
#ifndef UKEY_UTIL_MBEDTLS_COMPAT_H
#define UKEY_UTIL_MBEDTLS_COMPAT_H

#include <mbedtls/version.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <stddef.h>

#if MBEDTLS_VERSION_MAJOR >= 3
#include <psa/crypto.h>
#define COMPAT_MBEDTLS3 1
#else
#define COMPAT_MBEDTLS3 0
#endif

/* Library-wide initialisation (PSA on 3.x); 0 on success. */
static inline int compat_crypto_init(void)
{
#if COMPAT_MBEDTLS3
    return psa_crypto_init() == PSA_SUCCESS ? 0 : -1;
#else
    return 0;
#endif
}

static inline int compat_pk_parse_key(mbedtls_pk_context *pk, const unsigned char *key, size_t len,
                                      int (*f_rng)(void *, unsigned char *, size_t), void *p_rng)
{
#if COMPAT_MBEDTLS3
    return mbedtls_pk_parse_key(pk, key, len, NULL, 0, f_rng, p_rng);
#else
    (void)f_rng;
    (void)p_rng;
    return mbedtls_pk_parse_key(pk, key, len, NULL, 0);
#endif
}

/* mbedtls_pk_check_pair, which takes an RNG from 3.0 on. */
static inline int compat_pk_check_pair(const mbedtls_pk_context *pub, const mbedtls_pk_context *prv,
                                       int (*f_rng)(void *, unsigned char *, size_t), void *p_rng)
{
#if COMPAT_MBEDTLS3
    return mbedtls_pk_check_pair(pub, prv, f_rng, p_rng);
#else
    (void)f_rng;
    (void)p_rng;
    return mbedtls_pk_check_pair(pub, prv);
#endif
}

/*
 * mbedtls_pk_parse_keyfile and mbedtls_x509_crt_parse_file, but reading
 * through util/file.h: mbedTLS's own fopen() takes the ANSI code page on
 * Windows, where a UTF-8 path with Chinese in it does not open. The key's
 * text is wiped after parsing.
 */
int compat_pk_parse_keyfile(mbedtls_pk_context *pk, const char *path,
                            int (*f_rng)(void *, unsigned char *, size_t), void *p_rng);
int compat_x509_crt_parse_file(mbedtls_x509_crt *crt, const char *path);

/* One-shot SHA-256 (the _ret variant on 2.28). */
int compat_sha256(const unsigned char *in, size_t len, unsigned char out[32]);

#include <mbedtls/pem.h>

/* The DER bytes a successful mbedtls_pem_read_buffer() decoded. */
static inline const unsigned char *compat_pem_der(const mbedtls_pem_context *pem, size_t *len)
{
#if COMPAT_MBEDTLS3
    return mbedtls_pem_get_buffer((mbedtls_pem_context *)pem, len);
#else
    *len = pem->buflen;
    return pem->buf;
#endif
}

struct mbedtls_ssl_config;
/* A server's protocol choices: TLS 1.2 as the minimum (and 1.3 as the
 * maximum where the library has it), AEAD ECDHE-ECDSA suites only, and the
 * key exchange groups in the server's order of preference: X25519, P-256,
 * then P-384 and P-521 only for a client that offers neither. */
void compat_ssl_conf_server_crypto(struct mbedtls_ssl_config *conf);

/* 1 if the certificate carries extension `type` (MBEDTLS_X509_EXT_*). */
static inline int compat_crt_has_ext(const mbedtls_x509_crt *crt, int type)
{
#if COMPAT_MBEDTLS3
    return mbedtls_x509_crt_has_ext_type(crt, type);
#else
    return (crt->ext_types & type) != 0;
#endif
}

/* Sets a certificate serial from big-endian bytes (first byte < 0x80). */
int compat_x509write_crt_set_serial(mbedtls_x509write_cert *crt, const unsigned char *serial,
                                    size_t len);

/* mbedtls_x509write_crt_der, with ECDSA signature algorithms encoded as
 * RFC 5758 says (no NULL parameter: 2.28 writes one, which Chromium
 * refuses). `issuer_key` is the key the certificate is signed with. Returns
 * the length written at the end of buf, or a negative mbedTLS error. */
int compat_x509write_crt_der(mbedtls_x509write_cert *crt, mbedtls_pk_context *issuer_key, unsigned char *buf,
                             size_t size, int (*f_rng)(void *, unsigned char *, size_t), void *p_rng);

/* Human-readable text for any mbedTLS error code, "mbedTLS -0x2700: ..." */
void compat_strerror(int code, char *buf, size_t len);

#endif
