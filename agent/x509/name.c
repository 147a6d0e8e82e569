/* Distinguished names as UTF-8 text; see name.h. */
#include "x509/name.h"

#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <stdio.h>
#include <string.h>

/* Appends code point `cp` as UTF-8; control characters become '?'. */
static size_t put_utf8(char *out, size_t o, size_t cap, unsigned cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x20 || cp == 0x7f || (cp >= 0xd800 && cp < 0xe000))
        cp = '?';
    if (cp < 0x80)
        b[0] = (unsigned char)cp, n = 1;
    else if (cp < 0x800)
        b[0] = (unsigned char)(0xc0 | cp >> 6), b[1] = (unsigned char)(0x80 | (cp & 0x3f)), n = 2;
    else
        b[0] = (unsigned char)(0xe0 | cp >> 12), b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
        b[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
    if (o + n >= cap)
        return o;
    memcpy(out + o, b, n);
    return o + n;
}

/* Appends an attribute value: BMPString (UTF-16BE) is converted, UTF8String
 * copied as is (it is checked by Jansson later), other strings byte-wise
 * with non-ASCII as Latin-1. */
static size_t put_value(char *out, size_t o, size_t cap, const mbedtls_x509_buf *v)
{
    if (v->tag == MBEDTLS_ASN1_BMP_STRING) {
        for (size_t i = 0; i + 1 < v->len; i += 2)
            o = put_utf8(out, o, cap, (unsigned)(v->p[i] << 8 | v->p[i + 1]));
        return o;
    }
    for (size_t i = 0; i < v->len; i++) {
        unsigned char c = v->p[i];
        if (v->tag == MBEDTLS_ASN1_UTF8_STRING && c >= 0x80) {
            if (o + 1 < cap)
                out[o++] = (char)c;
        } else {
            o = put_utf8(out, o, cap, c);
        }
    }
    return o;
}

/* Replaces every byte of `s` that does not start a valid UTF-8 sequence
 * with '?', in place, so the text is always valid JSON. */
static void utf8_repair(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
        size_t i = 1;
        for (; n > 1 && i < n; i++)
            if ((p[i] & 0xc0) != 0x80)
                break;
        if (n == 0 || i < n || (n == 2 && *p < 0xc2)) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

void x509_name_format(const mbedtls_x509_name *name, char *out, size_t cap, char *cn, size_t cncap)
{
    size_t o = 0;
    out[0] = '\0';
    if (cn)
        cn[0] = '\0';
    for (const mbedtls_x509_name *n = name; n; n = n->next) {
        const char *short_name = NULL;
        size_t start;
        if (!n->oid.p)
            continue;
        if (mbedtls_oid_get_attr_short_name(&n->oid, &short_name) != 0)
            short_name = "?";
        if (o > 0 && o + 2 < cap)
            out[o++] = ',', out[o++] = ' ';
        o += (size_t)snprintf(out + o, cap - o, "%s=", short_name);
        if (o >= cap)
            o = cap - 1;
        start = o;
        o = put_value(out, o, cap, &n->val);
        out[o] = '\0';
        utf8_repair(out + start);
        if (cn && strcmp(short_name, "CN") == 0)
            snprintf(cn, cncap, "%s", out + start);
    }
}

