/* Distinguished names as UTF-8 text; see name.h. */
#include "x509/name.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <stdio.h>
#include <string.h>

/* Replaces control characters and every byte that does not start a valid
 * UTF-8 sequence with '?', in place. */
static void utf8_repair(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
        size_t i = 1;
        for (; n > 1 && i < n; i++)
            if ((p[i] & 0xc0) != 0x80)
                break;
        if (n == 0 || i < n || (n == 2 && *p < 0xc2) || *p < 0x20 || *p == 0x7f) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

/* Appends `s` (len bytes) at out[o], truncated to the capacity at a
 * character boundary; returns the new end. */
static size_t append(char *out, size_t o, size_t cap, const char *s, size_t len)
{
    if (o + len >= cap) {
        len = cap - 1 - o;
        while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80) /* do not cut a character */
            len--;
    }
    memcpy(out + o, s, len);
    out[o + len] = '\0';
    return o + len;
}

/* The short name (or dotted OID) of an attribute type, and its dotted OID. */
static void entry_key(const ASN1_OBJECT *obj, char *key, size_t kcap, char *oid, size_t ocap)
{
    int nid = OBJ_obj2nid(obj);
    if (OBJ_obj2txt(oid, (int)ocap, obj, 1) <= 0)
        snprintf(oid, ocap, "?");
    if (nid != NID_undef && OBJ_nid2sn(nid))
        snprintf(key, kcap, "%s", OBJ_nid2sn(nid));
    else
        snprintf(key, kcap, "%s", oid);
}

/* The value as valid UTF-8 (cut at a NUL, at most cap - 1 bytes, ending on
 * a character boundary). */
static void entry_value(const X509_NAME_ENTRY *e, char *val, size_t cap)
{
    const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
    unsigned char *utf8 = NULL;
    int n;
    val[0] = '\0';
    if ((n = ASN1_STRING_to_UTF8(&utf8, v)) >= 0) {
        append(val, 0, cap, (const char *)utf8, (size_t)n);
    } else { /* not convertible (e.g. a broken UTF8String): its bytes, repaired below */
        ERR_clear_error();
        append(val, 0, cap, (const char *)ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v));
    }
    OPENSSL_free(utf8);
    utf8_repair(val); /* a NUL inside the value has ended the text there */
}

int x509_name_entry(const X509_NAME *name, int i, char *key, size_t kcap, char *oid, size_t ocap, char *val,
                    size_t vcap)
{
    const X509_NAME_ENTRY *e;
    if (!name || i < 0 || i >= X509_NAME_entry_count(name) || !(e = X509_NAME_get_entry(name, i)))
        return -1;
    entry_key(X509_NAME_ENTRY_get_object(e), key, kcap, oid, ocap);
    entry_value(e, val, vcap);
    return 0;
}

void x509_name_format(const X509_NAME *name, char *out, size_t cap, char *cn, size_t cncap)
{
    size_t o = 0;
    out[0] = '\0';
    if (cn)
        cn[0] = '\0';
    for (int i = 0; name && i < X509_NAME_entry_count(name); i++) {
        char key[96], oid[96], val[1024];
        x509_name_entry(name, i, key, sizeof key, oid, sizeof oid, val, sizeof val);
        if (o > 0)
            o = append(out, o, cap, ", ", 2);
        o = append(out, o, cap, key, strlen(key));
        o = append(out, o, cap, "=", 1);
        o = append(out, o, cap, val, strlen(val));
        if (cn && strcmp(oid, "2.5.4.3") == 0)
            snprintf(cn, cncap, "%s", val);
    }
}
