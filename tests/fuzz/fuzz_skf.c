/* Fuzz target: what an SKF library hands back (agent/token/skfwire.h) —
 * name lists, DEVINFO, public-key and signature blobs in either ULONG
 * width. Input: the bytes a library wrote; every reader sees all of them. */
#include "token/skfwire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char names[SKFW_MAX_NAMES][SKFW_NAME_MAX];
    struct skfw_devinfo di;
    struct skfw_pubkey pk;
    unsigned char rs[64];
    /* As skf.c hands a list over: size + 2 bytes, zeroed past the data. */
    char *list = calloc(1, size + 2);
    long n;
    if (!list)
        return 0;
    memcpy(list, data, size);
    n = skfw_names(list, size, names);
    if (n > SKFW_MAX_NAMES)
        abort();
    for (long i = 0; i < n; i++) {
        size_t k = strlen(names[i]);
        if (k == 0 || k >= SKFW_NAME_MAX || !skfw_text(names[i], k))
            abort(); /* only text names, each shorter than its slot */
        for (long j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                abort(); /* each name once */
    }
    free(list);
    if (skfw_devinfo(data, size, &di) == 0 &&
        (!(di.label[0] || di.serial[0]) || !skfw_text(di.label, strlen(di.label)) ||
         !skfw_text(di.serial, strlen(di.serial)) || !skfw_text(di.manufacturer, strlen(di.manufacturer))))
        abort(); /* a DEVINFO read has a name, all of it text */
    for (int abi = 4; abi <= 8; abi += 4)
        if (skfw_pubkey(data, size, abi, &pk) == 0 &&
            (skfw_abi(size) != abi || (pk.type == SKFW_KEY_ECC ? pk.bits != 256 : pk.bits != 1024 && pk.bits != 2048)))
            abort(); /* a blob is read only with its width and sane sizes */
    skfw_eccsig(data, size, rs);
    return 0;
}
