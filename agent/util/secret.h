/*
 * Secrets in memory: PINs, keys. Zeroed with a call the compiler may not
 * remove (mbedtls_platform_zeroize), never with a plain memset before free.
 */
#ifndef UKEY_UTIL_SECRET_H
#define UKEY_UTIL_SECRET_H

#include <stddef.h>

void secret_wipe(void *p, size_t n);
/* Wipes a NUL-terminated string's bytes and frees it; NULL is fine. */
void secret_free_str(char *s);
/* Turns off crash dumps of this process (security.md 8.8; util/process.h),
 * and makes Jansson wipe every block it frees (request bodies, the
 * parser's buffers: a PIN passes through them). */
void secret_harden_process(void);

#endif
