/* The process-wide DRBG; see rng.h. */
#include "util/rng.h"

#include "util/mbedtls_compat.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static int seeded;

int rng_init(void)
{
    static const unsigned char personal[] = "ukey-agent";
    if (seeded)
        return 0;
    if (compat_crypto_init() != 0)
        return -1;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, personal,
                              sizeof personal - 1) != 0) {
        mbedtls_ctr_drbg_free(&drbg);
        mbedtls_entropy_free(&entropy);
        return -1;
    }
    seeded = 1;
    return 0;
}

int rng_random(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    return mbedtls_ctr_drbg_random(&drbg, out, len);
}

void rng_free(void)
{
    if (!seeded)
        return;
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    seeded = 0;
}
