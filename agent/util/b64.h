/*
 * Base64 (RFC 4648 section 4, padded) the way the API takes and gives it:
 * out of the agent in one line, into it only as one line of the alphabet
 * (mbedTLS's decoder alone would skip CR, LF and spaces, and a signature
 * covers a text exactly as given).
 */
#ifndef UKEY_UTIL_B64_H
#define UKEY_UTIL_B64_H

#include <stddef.h>

/* The Base64 of `len` bytes, NUL-terminated and malloc'd; NULL without memory. */
char *b64_encode(const unsigned char *in, size_t len);

/* Decodes the `n` characters at `s`, which must all be of the alphabet or
 * '=', into `out` (capacity `cap`): 0 with *len, or -1 (bad Base64, or
 * longer than cap). */
int b64_decode_strict(const char *s, size_t n, unsigned char *out, size_t cap, size_t *len);

#endif
