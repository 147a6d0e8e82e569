/* Reading what an SKF library returns; see skfwire.h. */
#include "token/skfwire.h"

#include <string.h>

/* DEVINFO (GM/T 0016 6.4.4, pack(1)): VERSION (2 bytes), then the strings. */
#define DEVINFO_MANUFACTURER 2
#define DEVINFO_ISSUER 66
#define DEVINFO_LABEL 130
#define DEVINFO_SERIAL 162
#define DEVINFO_STRINGS_END 194

int skfw_text(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t more;
        unsigned cp;
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        /* RFC 3629 4: the shortest form only, no surrogates, at most U+10FFFF. */
        if (c >= 0xc2 && c <= 0xdf)
            more = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            more = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            more = 3, cp = c & 0x07;
        else
            return 0;
        if (len - i <= more)
            return 0;
        for (size_t k = 1; k <= more; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (more == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += more + 1;
    }
    return 1;
}

/* 1 if `name` is among the first n of names. */
static int listed(char names[SKFW_MAX_NAMES][SKFW_NAME_MAX], size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

long skfw_names(const char *list, size_t len, char names[SKFW_MAX_NAMES][SKFW_NAME_MAX])
{
    size_t n = 0, i = 0;
    if (len > SKFW_LIST_MAX)
        return -1;
    for (;;) {
        /* The caller's two zero bytes past `len` end the walk in any case. */
        size_t k = strnlen(list + i, len + 2 - i);
        if (i + k >= len)
            return -1; /* a name runs past the size the library gave */
        if (k == 0)
            break; /* the list's closing '\0' */
        if (n < SKFW_MAX_NAMES && k < SKFW_NAME_MAX && skfw_text(list + i, k)) {
            memcpy(names[n], list + i, k);
            names[n][k] = '\0';
            n += !listed(names, n, names[n]); /* a name twice means one thing */
        }
        i += k + 1;
    }
    return (long)n;
}

/* A fixed-width string field: up to its first '\0', trailing blanks
 * dropped; empty when it is not text. -1 when the field neither ends in
 * '\0' nor is padded with blanks: not a DEVINFO string (GM/T 0016 6.4.4
 * says "以'\0'结束"; some vendors pad instead, as PKCS#11 does). */
static int field(char *out, const unsigned char *in, size_t width)
{
    size_t k = strnlen((const char *)in, width);
    if (k == width && in[width - 1] != ' ')
        return -1;
    while (k > 0 && in[k - 1] == ' ')
        k--;
    if (!skfw_text((const char *)in, k))
        k = 0;
    memcpy(out, in, k);
    out[k] = '\0';
    return 0;
}

int skfw_devinfo(const unsigned char *buf, size_t len, struct skfw_devinfo *out)
{
    memset(out, 0, sizeof *out);
    if (len < DEVINFO_STRINGS_END)
        return -1;
    if (field(out->manufacturer, buf + DEVINFO_MANUFACTURER, 64) != 0 ||
        field(out->issuer, buf + DEVINFO_ISSUER, 64) != 0 || field(out->label, buf + DEVINFO_LABEL, 32) != 0 ||
        field(out->serial, buf + DEVINFO_SERIAL, 32) != 0)
        return -1;
    return out->label[0] || out->serial[0] ? 0 : -1;
}

int skfw_abi(unsigned long long blob_len)
{
    switch (blob_len) {
    case 132: /* ECCPUBLICKEYBLOB: ULONG BitLen + 2 x 64 */
    case 268: /* RSAPUBLICKEYBLOB: 2 ULONG + 256 + 4 */
        return 4;
    case 136:
    case 276: /* packed */
    case 280: /* naturally aligned: 4 bytes of padding at the end */
        return 8;
    default:
        return 0;
    }
}

/* A little-endian ULONG of `abi` bytes (the libraries run on our host). */
static unsigned long long ulong_at(const unsigned char *p, int abi)
{
    unsigned long long v = 0;
    for (int i = abi - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int all_zero(const unsigned char *p, size_t n)
{
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

int skfw_pubkey(const unsigned char *blob, size_t len, int abi, struct skfw_pubkey *out)
{
    size_t u = (size_t)abi;
    memset(out, 0, sizeof *out);
    if ((abi != 4 && abi != 8) || skfw_abi(len) != abi)
        return -1;
    if (len == u + 128) { /* 132 or 136: ECCPUBLICKEYBLOB {BitLen; X[64]; Y[64]} */
        const unsigned char *x = blob + u, *y = blob + u + 64;
        out->type = SKFW_KEY_ECC;
        out->bits = (unsigned)ulong_at(blob, abi);
        if (out->bits != 256 || !all_zero(x, 32) || !all_zero(y, 32))
            return -1;
        memcpy(out->x, x + 32, 32);
        memcpy(out->y, y + 32, 32);
        return 0;
    }
    /* RSAPUBLICKEYBLOB {AlgID; BitLen; Modulus[256]; PublicExponent[4]} */
    {
        unsigned long long bits = ulong_at(blob + u, abi);
        const unsigned char *n = blob + 2 * u, *e = n + 256;
        out->type = SKFW_KEY_RSA;
        if (bits != 1024 && bits != 2048)
            return -1;
        out->bits = (unsigned)bits;
        /* The spec says the modulus is BitLen/8 bytes long, not where they
         * sit: right-aligned here, as the 2048-bit case forces. */
        if (!all_zero(n, 256 - bits / 8) || (n[256 - bits / 8] & 0x80) == 0 || all_zero(e, 4))
            return -1;
        memcpy(out->n, n, 256);
        memcpy(out->e, e, 4);
        return 0;
    }
}

int skfw_eccsig(const unsigned char *blob, size_t len, unsigned char rs[64])
{
    /* ECCSIGNATUREBLOB {r[64]; s[64]}, right-aligned (GM/T 0016 6.4.7). */
    if (len < 128 || !all_zero(blob, 32) || !all_zero(blob + 64, 32) || all_zero(blob + 32, 32) ||
        all_zero(blob + 96, 32))
        return -1;
    memcpy(rs, blob + 32, 32);
    memcpy(rs + 32, blob + 96, 32);
    return 0;
}
