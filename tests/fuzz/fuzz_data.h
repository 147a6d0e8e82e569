/* The fixed inputs of the fuzz targets: files of tests/data (UKEY_FUZZ_DATA). */
#ifndef UKEY_FUZZ_DATA_H
#define UKEY_FUZZ_DATA_H

#include "x509/crt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The certificate tests/data/`name` (e.g. "ocsp/inter.pem"); NULL if it cannot be read. */
static inline X509 *fuzz_load_cert(const char *name)
{
    const char *dir = getenv("UKEY_FUZZ_DATA");
    char path[4200];
    STACK_OF(X509) *sk = sk_X509_new_null();
    X509 *c = NULL;
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", name);
    if (sk && x509_stack_add_file(sk, path) > 0)
        c = sk_X509_shift(sk);
    sk_X509_pop_free(sk, X509_free);
    return c;
}

/* Runs fn(path) on `data` written to a temporary file (for loaders that read files). */
static inline void fuzz_as_file(const uint8_t *data, size_t size, void (*fn)(const char *path))
{
    char path[] = "/tmp/ukey-fuzz-file-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return;
    if (write(fd, data, size) == (ssize_t)size) {
        close(fd);
        fn(path);
    } else {
        close(fd);
    }
    unlink(path);
}

#endif
