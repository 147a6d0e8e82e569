/* Secret handling helpers; see secret.h. */
#include "util/secret.h"

#include "util/process.h"

#include <jansson.h>
#include <mbedtls/platform_util.h>
#include <stdlib.h>
#include <string.h>

void secret_wipe(void *p, size_t n)
{
    if (p && n)
        mbedtls_platform_zeroize(p, n);
}

void secret_free_str(char *s)
{
    if (!s)
        return;
    secret_wipe(s, strlen(s));
    free(s);
}

/* Jansson's free: the parser's buffers and the strings of a request body
 * may hold a PIN, so every block is wiped whole before it is freed. */
static void json_wiping_free(void *p)
{
    if (!p)
        return;
    secret_wipe(p, process_block_size(p));
    free(p);
}

void secret_harden_process(void)
{
    json_set_alloc_funcs(malloc, json_wiping_free);
    process_no_dumps();
}
