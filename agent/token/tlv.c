/* BER-TLV reading; see tlv.h. */
#include "token/tlv.h"

int tlv_next(const unsigned char **p, const unsigned char *end, struct tlv *out)
{
    const unsigned char *q = *p;
    unsigned tag;
    size_t len;

    if (q >= end)
        return -1;
    tag = *q++;
    if ((tag & 0x1f) == 0x1f) {
        /* Multi-byte tag: continuation bytes have bit 8 set; at most 3 bytes. */
        for (int i = 0;; i++) {
            if (q >= end || i == 2)
                return -1;
            tag = (tag << 8) | *q;
            if (!(*q++ & 0x80))
                break;
        }
    }
    if (q >= end)
        return -1;
    len = *q++;
    if (len & 0x80) {
        size_t n = len & 0x7f;
        if (n == 0 || n > 3 || (size_t)(end - q) < n)
            return -1;
        len = 0;
        while (n--)
            len = (len << 8) | *q++;
    }
    if ((size_t)(end - q) < len)
        return -1;
    out->tag = tag;
    out->value = q;
    out->len = len;
    *p = q + len;
    return 0;
}

int tlv_find(const unsigned char *buf, size_t len, unsigned tag, struct tlv *out)
{
    const unsigned char *p = buf, *end = buf + len;
    while (p < end) {
        if (tlv_next(&p, end, out) != 0)
            return -1;
        if (out->tag == tag)
            return 0;
    }
    return -1;
}
