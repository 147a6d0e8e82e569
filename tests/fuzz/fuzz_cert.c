/* Fuzz target: card certificates as the agent reads them — libcrypto
 * parsing (x509/crt.h), then our own DN formatting, the API description and the CRL
 * distribution point and AIA parser (security.md 8.7 item 6). */
#include "x509/cert.h"
#include "x509/crt.h"
#include "x509/ext.h"
#include "x509/name.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    X509 *crt = x509_from_der(data, size);
    struct x509_urls urls;
    char dn[1024], cn[256];
    json_t *desc = x509_cert_json(data, size);
    json_decref(desc);
    if (crt) {
        int bits, is_ca, can_sign;
        x509_name_format(X509_get_subject_name(crt), dn, sizeof dn, cn, sizeof cn);
        x509_key_kind(crt, &bits);
        x509_cert_role(data, size, &is_ca, &can_sign);
        x509_cert_urls(crt, &urls);
        for (size_t i = 0; i < urls.n_crl + urls.n_ocsp + urls.n_ca_issuers; i++) {
            const char *url = i < urls.n_crl                 ? urls.crl[i]
                              : i < urls.n_crl + urls.n_ocsp ? urls.ocsp[i - urls.n_crl]
                                                             : urls.ca_issuers[i - urls.n_crl - urls.n_ocsp];
            if (strncmp(url, "http", 4) != 0 || strlen(url) >= X509_URL_LEN)
                __builtin_trap(); /* only http(s) URLs may come out */
        }
    }
    X509_free(crt);
    return 0;
}
