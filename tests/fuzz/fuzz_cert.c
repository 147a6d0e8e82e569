/* Fuzz target: card certificates as the agent reads them — mbedTLS parsing,
 * then our own DN formatting, the API description and the CRL
 * distribution point and AIA parser (security.md 8.7 item 6). */
#include "x509/cert.h"
#include "x509/ext.h"
#include "x509/name.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mbedtls_x509_crt crt;
    struct x509_urls urls;
    char dn[1024], cn[256];
    json_t *desc = x509_cert_json(data, size);
    json_decref(desc);
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, data, size) == 0) {
        x509_name_format(&crt.subject, dn, sizeof dn, cn, sizeof cn);
        x509_cert_urls(&crt, &urls);
        for (size_t i = 0; i < urls.n_crl + urls.n_ocsp + urls.n_ca_issuers; i++) {
            const char *url = i < urls.n_crl                 ? urls.crl[i]
                              : i < urls.n_crl + urls.n_ocsp ? urls.ocsp[i - urls.n_crl]
                                                             : urls.ca_issuers[i - urls.n_crl - urls.n_ocsp];
            if (strncmp(url, "http", 4) != 0 || strlen(url) >= X509_URL_LEN)
                __builtin_trap(); /* only http(s) URLs may come out */
        }
    }
    mbedtls_x509_crt_free(&crt);
    return 0;
}
