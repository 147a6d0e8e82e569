/* The fixed inputs of the fuzz targets: files of tests/data (UKEY_FUZZ_DATA). */
#ifndef UKEY_FUZZ_DATA_H
#define UKEY_FUZZ_DATA_H

#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>

/* Loads the certificate tests/data/`name` (e.g. "ocsp/inter.pem") into a new `crt`. */
static inline void fuzz_load_cert(mbedtls_x509_crt *crt, const char *name)
{
    const char *dir = getenv("UKEY_FUZZ_DATA");
    char path[4200];
    mbedtls_x509_crt_init(crt);
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", name);
    mbedtls_x509_crt_parse_file(crt, path);
}

#endif
