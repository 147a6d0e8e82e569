/*
 * BER-TLV reading (ISO/IEC 7816-4 5.2, the encoding of PIV data objects).
 * Bounded: every length is checked against the buffer before use, lengths
 * over 3 bytes are refused, and nothing is copied. Card data is hostile
 * input (security.md CARD-06).
 */
#ifndef UKEY_TOKEN_TLV_H
#define UKEY_TOKEN_TLV_H

#include <stddef.h>

struct tlv {
    unsigned tag;               /* up to 3 tag bytes, e.g. 0x5FC105 */
    const unsigned char *value; /* points into the parsed buffer */
    size_t len;
};

/*
 * Reads the TLV at *p (not past `end`) into `out` and advances *p past it.
 * Returns 0, or -1 for a malformed or truncated object (then *p is unchanged).
 */
int tlv_next(const unsigned char **p, const unsigned char *end, struct tlv *out);

/* Finds the first TLV with `tag` among the TLVs of buf[0..len); 0 or -1. */
int tlv_find(const unsigned char *buf, size_t len, unsigned tag, struct tlv *out);

#endif
