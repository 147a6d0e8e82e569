/* Fuzz target: CRLs as the agent receives them from a distribution point
 * (issue 8: "certificate, CRL, OCSP and extension parsing"), judged for the
 * test PKI's certificate and issuer in tests/data/ocsp (UKEY_FUZZ_DATA) at
 * a fixed time, as DER and as NUL-terminated PEM text. */
#include "fuzz_data.h"
#include "x509/crl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static X509 *issuer, *crt;
    static int loaded;
    struct crl_check c;
    unsigned char *text;
    if (!loaded) {
        issuer = fuzz_load_cert("ocsp/inter.pem");
        crt = fuzz_load_cert("ocsp/revoked.pem");
        loaded = 1;
    }
    /* The fetch and the cache hand over their bytes with a NUL after them. */
    if (!(text = malloc(size + 1)))
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    crl_check(text, size, crt, issuer, 1900000000, &c);
    if (c.finding > CRL_GOOD)
        __builtin_trap();
    crl_check(text, size, crt, NULL, 1900000000, &c);
    free(text);
    return 0;
}
