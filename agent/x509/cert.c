/* Certificate description for the API; see cert.h. */
#include "x509/cert.h"

#include "util/mbedtls_compat.h"

#include <mbedtls/base64.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
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

/* "CN=张三, O=Example" from a name; `cn` (may be NULL) gets the last CN. */
static void format_name(const mbedtls_x509_name *name, char *out, size_t cap, char *cn, size_t cncap)
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

static void format_time(const mbedtls_x509_time *t, char out[32])
{
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", t->year % 10000, t->mon % 100, t->day % 100,
             t->hour % 100, t->min % 100, t->sec % 100);
}

static json_t *key_usages(const mbedtls_x509_crt *crt)
{
    static const struct {
        unsigned bit;
        const char *name;
    } bits[] = {
        {MBEDTLS_X509_KU_DIGITAL_SIGNATURE, "digitalSignature"},
        {MBEDTLS_X509_KU_NON_REPUDIATION, "nonRepudiation"},
        {MBEDTLS_X509_KU_KEY_ENCIPHERMENT, "keyEncipherment"},
        {MBEDTLS_X509_KU_DATA_ENCIPHERMENT, "dataEncipherment"},
        {MBEDTLS_X509_KU_KEY_AGREEMENT, "keyAgreement"},
        {MBEDTLS_X509_KU_KEY_CERT_SIGN, "keyCertSign"},
        {MBEDTLS_X509_KU_CRL_SIGN, "cRLSign"},
    };
    json_t *list = json_array();
    if (!list || !compat_crt_has_ext(crt, MBEDTLS_X509_EXT_KEY_USAGE))
        return list;
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if (mbedtls_x509_crt_check_key_usage(crt, bits[i].bit) == 0)
            json_array_append_new(list, json_string(bits[i].name));
    return list;
}

static json_t *ext_key_usages(const mbedtls_x509_crt *crt)
{
    static const struct {
        const char *oid;
        size_t len;
        const char *name;
    } ekus[] = {
        {MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH), "clientAuth"},
        {MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH), "serverAuth"},
        {MBEDTLS_OID_EMAIL_PROTECTION, MBEDTLS_OID_SIZE(MBEDTLS_OID_EMAIL_PROTECTION), "emailProtection"},
        {MBEDTLS_OID_CODE_SIGNING, MBEDTLS_OID_SIZE(MBEDTLS_OID_CODE_SIGNING), "codeSigning"},
    };
    json_t *list = json_array();
    if (!list || !compat_crt_has_ext(crt, MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE))
        return list;
    for (size_t i = 0; i < sizeof ekus / sizeof ekus[0]; i++)
        if (mbedtls_x509_crt_check_extended_key_usage(crt, ekus[i].oid, ekus[i].len) == 0)
            json_array_append_new(list, json_string(ekus[i].name));
    return list;
}

json_t *x509_cert_json(const unsigned char *der, size_t len)
{
    mbedtls_x509_crt crt;
    char subject[1024], issuer[1024], cn[256], serial[2 * 32 + 1], from[32], to[32];
    unsigned char *b64 = NULL;
    size_t b64len = 0;
    json_t *out = NULL;

    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, der, len) != 0)
        goto done;
    format_name(&crt.subject, subject, sizeof subject, cn, sizeof cn);
    format_name(&crt.issuer, issuer, sizeof issuer, NULL, 0);
    serial[0] = '\0';
    for (size_t i = 0; i < crt.serial.len && i < 32; i++)
        snprintf(serial + 2 * i, 3, "%02x", crt.serial.p[i]);
    format_time(&crt.valid_from, from);
    format_time(&crt.valid_to, to);
    mbedtls_base64_encode(NULL, 0, &b64len, der, len);
    if (!(b64 = malloc(b64len)) || mbedtls_base64_encode(b64, b64len, &b64len, der, len) != 0)
        goto done;
    out = json_pack("{s:s, s:s?, s:s, s:s, s:s, s:s, s:s, s:i, s:o, s:o, s:s}",
                    "subject", subject,
                    "subject_cn", cn[0] ? cn : NULL,
                    "issuer", issuer,
                    "serial", serial,
                    "not_before", from,
                    "not_after", to,
                    "key_type", mbedtls_pk_get_type(&crt.pk) == MBEDTLS_PK_RSA ? "RSA" : "EC",
                    "key_size", (int)mbedtls_pk_get_bitlen(&crt.pk),
                    "key_usage", key_usages(&crt),
                    "ext_key_usage", ext_key_usages(&crt),
                    "der", (char *)b64);
done:
    free(b64);
    mbedtls_x509_crt_free(&crt);
    return out;
}
