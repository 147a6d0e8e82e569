/* mbedTLS version differences; see mbedtls_compat.h. */
#include "util/mbedtls_compat.h"

#include <mbedtls/bignum.h>
#include <mbedtls/error.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
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

void compat_ssl_conf_versions_and_suites(struct mbedtls_ssl_config *conf)
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
#if COMPAT_MBEDTLS3
    mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
    mbedtls_ssl_conf_ciphersuites(conf, suites);
}
