/* Bytes as hex text: ids, serials, fingerprints, ATRs, cache keys. */
#ifndef UKEY_UTIL_HEX_H
#define UKEY_UTIL_HEX_H

#include <stddef.h>

/* The n bytes at `in` as 2n hex digits and a NUL in `out` (lower-case, or
 * upper-case when `upper`); returns out. */
char *hex_encode(char *out, const unsigned char *in, size_t n, int upper);

#endif
