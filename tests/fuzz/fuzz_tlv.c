/* Fuzz target: BER-TLV reading of card answers, walked recursively as the
 * PIV driver does (53 -> 70/71/34...), security.md 8.7 item 5. */
#include "token/tlv.h"

#include <stdint.h>
#include <stdlib.h>

static void walk(const unsigned char *p, const unsigned char *end, int depth)
{
    struct tlv t;
    while (depth < 8 && p < end && tlv_next(&p, end, &t) == 0) {
        if (t.value + t.len > end)
            abort(); /* a value must lie inside the buffer */
        walk(t.value, t.value + t.len, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tlv t;
    walk(data, data + size, 0);
    tlv_find(data, size, 0x53, &t);
    tlv_find(data, size, 0x5fc102, &t);
    return 0;
}
