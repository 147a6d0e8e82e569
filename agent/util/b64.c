/* Base64 in and out; see b64.h. */
#include "util/b64.h"

#include <mbedtls/base64.h>
#include <stdlib.h>
#include <string.h>

char *b64_encode(const unsigned char *in, size_t len)
{
    size_t n = 0;
    char *out;
    mbedtls_base64_encode(NULL, 0, &n, in, len);
    if (!(out = malloc(n)) || mbedtls_base64_encode((unsigned char *)out, n, &n, in, len) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

int b64_decode_strict(const char *s, size_t n, unsigned char *out, size_t cap, size_t *len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    size_t i;
    for (i = 0; i < n && s[i] && strchr(alphabet, s[i]); i++)
        ;
    *len = 0;
    return i == n && mbedtls_base64_decode(out, cap, len, (const unsigned char *)s, n) == 0 ? 0 : -1;
}
