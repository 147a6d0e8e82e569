/*
 * The process's random generator: one CTR_DRBG seeded from the OS
 * (getrandom via mbedtls_entropy). mbedTLS is built with threading, so the
 * DRBG may be used from any thread.
 */
#ifndef UKEY_UTIL_RNG_H
#define UKEY_UTIL_RNG_H

#include <stddef.h>

/* Seeds the generator once; 0 on success. Safe to call again. */
int rng_init(void);
/* f_rng-compatible callback; `ctx` is ignored (pass NULL). */
int rng_random(void *ctx, unsigned char *out, size_t len);
void rng_free(void);

#endif
