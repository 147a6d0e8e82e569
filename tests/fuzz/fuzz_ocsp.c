/* Fuzz target: OCSP answers as the agent receives them from a responder
 * (issue 8: "certificate, CRL, OCSP and extension parsing"), checked for
 * the test PKI's certificate and issuer in tests/data/ocsp
 * (UKEY_FUZZ_DATA), with a nonce, at a fixed time. */
#include "fuzz_data.h"
#include "x509/ocsp.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static X509 *issuer, *crt;
    static int loaded;
    static const unsigned char nonce[OCSP_NONCE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    struct ocsp_result r;
    char err[256];
    if (!loaded) {
        issuer = fuzz_load_cert("ocsp/inter.pem");
        crt = fuzz_load_cert("ocsp/valid.pem");
        loaded = 1;
    }
    if (ocsp_check(data, size, crt, issuer, nonce, 1900000000, &r, err, sizeof err) == 0 &&
        r.status > OCSP_UNKNOWN)
        __builtin_trap();
    ocsp_check(data, size, crt, issuer, NULL, 1900000000, &r, err, sizeof err);
    return 0;
}
