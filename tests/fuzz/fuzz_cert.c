/* Fuzz target: card certificates as the agent reads them — mbedTLS parsing,
 * then our own DN formatting, the API description and the CRL
 * distribution point parser (security.md 8.7 item 6). */
#include "x509/cert.h"
#include "x509/fetch.h"
#include "x509/name.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mbedtls_x509_crt crt;
    char url[512], dn[1024], cn[256];
    json_t *desc = x509_cert_json(data, size);
    json_decref(desc);
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, data, size) == 0) {
        x509_name_format(&crt.subject, dn, sizeof dn, cn, sizeof cn);
        if (x509_crl_url(&crt, url, sizeof url) == 0 && strncmp(url, "http", 4) != 0)
            __builtin_trap(); /* only http(s) URLs may come out */
    }
    mbedtls_x509_crt_free(&crt);
    return 0;
}
