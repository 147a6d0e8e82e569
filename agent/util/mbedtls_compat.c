/* mbedTLS version differences; see mbedtls_compat.h. */
#include "util/mbedtls_compat.h"

#include "util/file.h"
#include "util/secret.h"

#include <mbedtls/bignum.h>
#include <mbedtls/error.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int compat_x509write_crt_set_serial(mbedtls_x509write_cert *crt, const unsigned char *serial,
                                    size_t len)
{
#if COMPAT_MBEDTLS3
    return mbedtls_x509write_crt_set_serial_raw(crt, (unsigned char *)serial, len);
#else
    mbedtls_mpi mpi;
    int rc;
    mbedtls_mpi_init(&mpi);
    rc = mbedtls_mpi_read_binary(&mpi, serial, len);
    if (rc == 0)
        rc = mbedtls_x509write_crt_set_serial(crt, &mpi);
    mbedtls_mpi_free(&mpi);
    return rc;
#endif
}

void compat_strerror(int code, char *buf, size_t len)
{
    char text[160];
    mbedtls_strerror(code, text, sizeof text);
    snprintf(buf, len, "mbedTLS -0x%04x: %s", (unsigned)(code < 0 ? -code : code), text);
}

int compat_sha256(const unsigned char *in, size_t len, unsigned char out[32])
{
#if COMPAT_MBEDTLS3
    return mbedtls_sha256(in, len, out, 0);
#else
    return mbedtls_sha256_ret(in, len, out, 0);
#endif
}

void compat_ssl_conf_server_crypto(struct mbedtls_ssl_config *conf)
{
    static const int suites[] = {
#if COMPAT_MBEDTLS3 && defined(MBEDTLS_SSL_PROTO_TLS1_3)
        MBEDTLS_TLS1_3_AES_128_GCM_SHA256,
        MBEDTLS_TLS1_3_AES_256_GCM_SHA384,
        MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256,
#endif
        MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        0,
    };
    /* The server picks the first of its own list that the client offers
     * (2.28's default list starts with secp521r1, ~10x the cost of these
     * two); no Brainpool or Koblitz curves. */
#if COMPAT_MBEDTLS3
    static const uint16_t groups[] = {
        MBEDTLS_SSL_IANA_TLS_GROUP_X25519, MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
        MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1, MBEDTLS_SSL_IANA_TLS_GROUP_SECP521R1,
        MBEDTLS_SSL_IANA_TLS_GROUP_NONE,
    };
    mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
    mbedtls_ssl_conf_groups(conf, groups);
#else
    static const mbedtls_ecp_group_id groups[] = {
        MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_SECP384R1,
        MBEDTLS_ECP_DP_SECP521R1, MBEDTLS_ECP_DP_NONE,
    };
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_curves(conf, groups);
#endif
    mbedtls_ssl_conf_ciphersuites(conf, suites);
}

#if !COMPAT_MBEDTLS3
#include <mbedtls/asn1write.h>
#include <mbedtls/oid.h>
#include <stdlib.h>

/*
 * mbedTLS 2.28 writes ecdsa-with-SHA256 with a NULL parameter, which RFC
 * 5758 3.2 forbids and Chromium refuses ("Unacceptable signature
 * algorithm": the page never loads). Rewrites both AlgorithmIdentifiers
 * without it and signs the corrected TBSCertificate again with `issuer`.
 * `der` (len bytes) in, the certificate at the end of out[0..cap) out.
 */
static int ecdsa_without_null(const unsigned char *der, size_t len, mbedtls_pk_context *issuer,
                              int (*f_rng)(void *, unsigned char *, size_t), void *p_rng, unsigned char *out,
                              size_t cap)
{
    static const unsigned char alg[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
    unsigned char *p = (unsigned char *)der, *end = p + len, *tbs_body, *tbs_end, *alg_at, *alg_end, *q;
    unsigned char *tbs = NULL, hash[32], sig[MBEDTLS_ECDSA_MAX_LEN];
    size_t n, body_len, sig_len = 0, total = 0;
    int rc = MBEDTLS_ERR_X509_BAD_INPUT_DATA, w;

    if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0 ||
        mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return rc;
    tbs_body = p;
    tbs_end = p + n;
    /* version [0], serialNumber, then the signature AlgorithmIdentifier */
    if (mbedtls_asn1_get_tag(&p, tbs_end, &n, MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0) != 0)
        return rc;
    p += n;
    if (mbedtls_asn1_get_tag(&p, tbs_end, &n, MBEDTLS_ASN1_INTEGER) != 0)
        return rc;
    p += n;
    alg_at = p;
    if (mbedtls_asn1_get_tag(&p, tbs_end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return rc;
    alg_end = p + n;
    /* The TBSCertificate again, its algorithm without the NULL. */
    body_len = (size_t)(alg_at - tbs_body) + sizeof alg + (size_t)(tbs_end - alg_end);
    if (!(tbs = malloc(body_len + 8)))
        return MBEDTLS_ERR_X509_ALLOC_FAILED;
    q = tbs + 8;
    memcpy(q, tbs_body, (size_t)(alg_at - tbs_body));
    memcpy(q + (alg_at - tbs_body), alg, sizeof alg);
    memcpy(q + (alg_at - tbs_body) + sizeof alg, alg_end, (size_t)(tbs_end - alg_end));
    if ((w = mbedtls_asn1_write_len(&q, tbs, body_len)) < 0 ||
        (w = mbedtls_asn1_write_tag(&q, tbs, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0) {
        free(tbs);
        return w;
    }
    n = (size_t)(tbs + 8 + body_len - q); /* the whole TBSCertificate at q */
    if ((rc = compat_sha256(q, n, hash)) != 0 ||
        (rc = mbedtls_pk_sign(issuer, MBEDTLS_MD_SHA256, hash, sizeof hash, sig, &sig_len, f_rng, p_rng)) != 0) {
        free(tbs);
        return rc;
    }
    /* Certificate ::= SEQUENCE { tbs, algorithm, BIT STRING signature }, written backwards. */
    p = out + cap;
    rc = 0;
    if ((w = mbedtls_asn1_write_bitstring(&p, out, sig, sig_len * 8)) < 0 ||
        (total += (size_t)w, (w = mbedtls_asn1_write_raw_buffer(&p, out, alg, sizeof alg)) < 0) ||
        (total += (size_t)w, (w = mbedtls_asn1_write_raw_buffer(&p, out, q, n)) < 0) ||
        (total += (size_t)w, (w = mbedtls_asn1_write_len(&p, out, total)) < 0) ||
        (total += (size_t)w, (w = mbedtls_asn1_write_tag(&p, out, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0))
        rc = w;
    total += (size_t)(w > 0 ? w : 0);
    free(tbs);
    return rc < 0 ? rc : (int)total;
}
#endif

int compat_x509write_crt_der(mbedtls_x509write_cert *crt, mbedtls_pk_context *issuer_key, unsigned char *buf,
                             size_t size, int (*f_rng)(void *, unsigned char *, size_t), void *p_rng)
{
    int n = mbedtls_x509write_crt_der(crt, buf, size, f_rng, p_rng);
#if COMPAT_MBEDTLS3
    (void)issuer_key;
    return n;
#else
    unsigned char *copy;
    int rc;
    if (n < 0 || mbedtls_pk_get_type(issuer_key) != MBEDTLS_PK_ECKEY)
        return n;
    if (!(copy = malloc((size_t)n)))
        return MBEDTLS_ERR_X509_ALLOC_FAILED;
    memcpy(copy, buf + size - (size_t)n, (size_t)n);
    rc = ecdsa_without_null(copy, (size_t)n, issuer_key, f_rng, p_rng, buf, size);
    free(copy);
    return rc;
#endif
}

/* Files of keys and certificates are small. */
#define COMPAT_PEM_FILE_MAX (1024 * 1024)

/* The length to parse: PEM with its NUL, DER without (as mbedTLS's own
 * file loading does). */
static size_t parse_len(const char *text, size_t len)
{
    return len + (strstr(text, "-----BEGIN ") != NULL);
}

int compat_pk_parse_keyfile(mbedtls_pk_context *pk, const char *path,
                            int (*f_rng)(void *, unsigned char *, size_t), void *p_rng)
{
    size_t len;
    char *text = file_read_all(path, COMPAT_PEM_FILE_MAX, &len);
    int rc;
    if (!text)
        return MBEDTLS_ERR_PK_FILE_IO_ERROR;
    rc = compat_pk_parse_key(pk, (const unsigned char *)text, parse_len(text, len), f_rng, p_rng);
    secret_wipe(text, len);
    free(text);
    return rc;
}

int compat_x509_crt_parse_file(mbedtls_x509_crt *crt, const char *path)
{
    size_t len;
    char *text = file_read_all(path, COMPAT_PEM_FILE_MAX, &len);
    int rc;
    if (!text)
        return MBEDTLS_ERR_X509_FILE_IO_ERROR;
    rc = mbedtls_x509_crt_parse(crt, (const unsigned char *)text, parse_len(text, len));
    free(text);
    return rc;
}
