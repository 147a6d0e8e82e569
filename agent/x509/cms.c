/*
 * CMS SignedData around a token-made signature (cms.h), written with a
 * small DER writer: every piece is a TLV appended to a growing buffer.
 */
#include "x509/cms.h"

#include "x509/crt.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OID contents (no tag, no length). */
static const unsigned char OID_DATA[] = {0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01};
static const unsigned char OID_SIGNED[] = {0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02};
static const unsigned char OID_GM_DATA[] = {0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x06, 0x01, 0x04, 0x02, 0x01};
static const unsigned char OID_GM_SIGNED[] = {0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x06, 0x01, 0x04, 0x02, 0x02};
static const unsigned char OID_CONTENT_TYPE[] = {0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x03};
static const unsigned char OID_MESSAGE_DIGEST[] = {0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x04};
static const unsigned char OID_SIGNING_TIME[] = {0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x05};
static const unsigned char OID_SHA256[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01};
static const unsigned char OID_SHA384[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02};
static const unsigned char OID_SM3[] = {0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x83, 0x11};
static const unsigned char OID_RSA[] = {0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01};
static const unsigned char OID_ECDSA_SHA256[] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02};
static const unsigned char OID_ECDSA_SHA384[] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03};
static const unsigned char OID_SM2_SM3[] = {0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x83, 0x75};

struct oid {
    const unsigned char *p;
    size_t n;
};
#define OID(a) {a, sizeof a}

/* What each key kind writes: content OIDs, digest, signature algorithm. */
struct profile {
    struct oid data, signed_data, digest, sig;
    int sig_null_params; /* rsaEncryption carries NULL parameters */
    const char *md;
};

static const struct profile rfc5652_sha256_rsa = {OID(OID_DATA),   OID(OID_SIGNED), OID(OID_SHA256),
                                                  OID(OID_RSA),    1,               "SHA256"};
static const struct profile rfc5652_p256 = {OID(OID_DATA),           OID(OID_SIGNED), OID(OID_SHA256),
                                            OID(OID_ECDSA_SHA256),   0,               "SHA256"};
static const struct profile rfc5652_p384 = {OID(OID_DATA),           OID(OID_SIGNED), OID(OID_SHA384),
                                            OID(OID_ECDSA_SHA384),   0,               "SHA384"};
static const struct profile gmt0010_sm2 = {OID(OID_GM_DATA), OID(OID_GM_SIGNED), OID(OID_SM3),
                                           OID(OID_SM2_SM3), 0,                  "SM3"};

struct cms_signed {
    const struct profile *prof;
    X509 *cert;
    unsigned char *data; /* the content when attached, else NULL */
    size_t len;
    unsigned char *attrs; /* SET OF Attribute, tag 0x31 */
    size_t attrs_len;
};

/* A growing DER buffer; `err` sticks after the first failed allocation. */
struct der {
    unsigned char *p;
    size_t n;
    int err;
};

static void put(struct der *d, const void *src, size_t n)
{
    if (d->err || n == 0)
        return;
    unsigned char *p = realloc(d->p, d->n + n);
    if (!p) {
        d->err = 1;
        return;
    }
    memcpy(p + d->n, src, n);
    d->p = p;
    d->n += n;
}

static void put_tlv(struct der *d, unsigned char tag, const void *content, size_t n)
{
    unsigned char h[6] = {tag};
    size_t hn = 2;
    if (n < 0x80) {
        h[1] = (unsigned char)n;
    } else {
        size_t k = 0;
        for (size_t v = n; v; v >>= 8)
            k++;
        h[1] = (unsigned char)(0x80 | k);
        for (size_t i = 0; i < k; i++)
            h[2 + i] = (unsigned char)(n >> (8 * (k - 1 - i)));
        hn = 2 + k;
    }
    put(d, h, hn);
    put(d, content, n);
}

/* Wrap everything in `inner` as one TLV appended to `d`; frees `inner`. */
static void put_wrap(struct der *d, unsigned char tag, struct der *inner)
{
    if (inner->err)
        d->err = 1;
    else
        put_tlv(d, tag, inner->p ? inner->p : (const unsigned char *)"", inner->n);
    free(inner->p);
    *inner = (struct der){0};
}

static void put_oid(struct der *d, struct oid o)
{
    put_tlv(d, 0x06, o.p, o.n);
}

/* AlgorithmIdentifier: SEQUENCE { oid [NULL] }. */
static void put_alg(struct der *d, struct oid o, int null_params)
{
    struct der s = {0};
    put_oid(&s, o);
    if (null_params)
        put_tlv(&s, 0x05, NULL, 0);
    put_wrap(d, 0x30, &s);
}

/* Attribute: SEQUENCE { type, SET { value } }, value a ready TLV. */
static void put_attr(struct der *d, struct oid type, const struct der *value)
{
    struct der s = {0}, set = {0};
    put_oid(&s, type);
    put(&set, value->p, value->n);
    set.err = value->err;
    put_wrap(&s, 0x31, &set);
    put_wrap(d, 0x30, &s);
}

/* signingTime: UTCTime for 1950..2049, GeneralizedTime otherwise (RFC 5652 11.3). */
static void put_time(struct der *d, time_t now)
{
    struct tm tm;
    char s[64];
    if (!gmtime_r(&now, &tm)) {
        d->err = 1;
        return;
    }
    int year = tm.tm_year + 1900;
    if (year >= 1950 && year < 2050) {
        snprintf(s, sizeof s, "%02d%02d%02d%02d%02d%02dZ", year % 100, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
        put_tlv(d, 0x17, s, strlen(s));
    } else {
        snprintf(s, sizeof s, "%04d%02d%02d%02d%02d%02dZ", year, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        put_tlv(d, 0x18, s, strlen(s));
    }
}

/* DER order of SET OF elements: as octet strings, the shorter padded with 0s. */
static int der_cmp(const struct der *a, const struct der *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->p, b->p, n);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

static void put_sorted_set(struct der *d, struct der *elems, size_t count)
{
    struct der set = {0};
    for (size_t i = 0; i < count; i++)
        if (elems[i].err || !elems[i].p) {
            d->err = 1;
            return;
        }
    for (size_t done = 0; done < count; done++) {
        size_t min = done;
        for (size_t i = done + 1; i < count; i++)
            if (der_cmp(&elems[i], &elems[min]) < 0)
                min = i;
        struct der t = elems[done];
        elems[done] = elems[min];
        elems[min] = t;
        put(&set, elems[done].p, elems[done].n);
    }
    put_wrap(d, 0x31, &set);
}

static const struct profile *profile_of(X509 *c)
{
    int bits;
    switch (x509_key_kind(c, &bits)) {
    case X509_KEY_RSA: return &rfc5652_sha256_rsa;
    case X509_KEY_P256: return &rfc5652_p256;
    case X509_KEY_P384: return &rfc5652_p384;
    case X509_KEY_SM2: return &gmt0010_sm2;
    default: return NULL;
    }
}

struct cms_signed *cms_begin(X509 *signer, const unsigned char *data, size_t len, int attached, time_t now)
{
    if (!signer || !data || len == 0)
        return NULL;
    const struct profile *prof = profile_of(signer);
    if (!prof)
        return NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD *alg = EVP_MD_fetch(NULL, prof->md, NULL);
    int ok = alg && EVP_Digest(data, len, md, &md_len, alg, NULL) == 1;
    EVP_MD_free(alg);
    if (!ok)
        return NULL;

    struct cms_signed *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->prof = prof;
    c->len = len;
    if (attached && !(c->data = malloc(len)))
        goto fail;
    if (attached)
        memcpy(c->data, data, len);

    struct der attrs[3] = {{0}}, v = {0}, out = {0};
    put_oid(&v, prof->data);
    put_attr(&attrs[0], (struct oid)OID(OID_CONTENT_TYPE), &v);
    free(v.p);
    v = (struct der){0};
    put_time(&v, now);
    put_attr(&attrs[1], (struct oid)OID(OID_SIGNING_TIME), &v);
    free(v.p);
    v = (struct der){0};
    put_tlv(&v, 0x04, md, md_len);
    put_attr(&attrs[2], (struct oid)OID(OID_MESSAGE_DIGEST), &v);
    free(v.p);
    put_sorted_set(&out, attrs, 3);
    for (size_t i = 0; i < 3; i++)
        free(attrs[i].p);
    if (out.err) {
        free(out.p);
        goto fail;
    }
    c->attrs = out.p;
    c->attrs_len = out.n;
    if (X509_up_ref(signer) != 1)
        goto fail;
    c->cert = signer;
    return c;
fail:
    cms_free(c);
    return NULL;
}

const unsigned char *cms_to_sign(const struct cms_signed *c, size_t *len)
{
    if (!c || !len)
        return NULL;
    *len = c->attrs_len;
    return c->attrs;
}

/* A DER blob OpenSSL writes (i2d_*), appended as it is. */
#define PUT_I2D(d, fn, obj)                                                                                          \
    do {                                                                                                             \
        unsigned char *p_ = NULL;                                                                                    \
        int n_ = fn(obj, &p_);                                                                                       \
        if (n_ <= 0)                                                                                                 \
            (d)->err = 1;                                                                                            \
        else                                                                                                         \
            put((d), p_, (size_t)n_);                                                                                \
        OPENSSL_free(p_);                                                                                            \
    } while (0)

int cms_finish(struct cms_signed *c, const unsigned char *sig, size_t sig_len, unsigned char **der, size_t *der_len)
{
    if (!c || !sig || sig_len == 0 || !der || !der_len)
        return -1;
    const struct profile *prof = c->prof;
    struct der si = {0}, sid = {0}, sd = {0}, encap = {0}, tmp = {0}, ci = {0}, inner = {0};

    /* SignerInfo */
    put_tlv(&si, 0x02, "\x01", 1);
    PUT_I2D(&sid, i2d_X509_NAME, X509_get_issuer_name(c->cert));
    PUT_I2D(&sid, i2d_ASN1_INTEGER, X509_get0_serialNumber(c->cert));
    put_wrap(&si, 0x30, &sid);
    put_alg(&si, prof->digest, 0);
    /* signedAttrs [0] IMPLICIT: the SET's length and contents under tag 0xA0. */
    put(&si, "\xA0", 1);
    put(&si, c->attrs + 1, c->attrs_len - 1);
    put_alg(&si, prof->sig, prof->sig_null_params);
    put_tlv(&si, 0x04, sig, sig_len);

    /* SignedData */
    put_tlv(&sd, 0x02, "\x01", 1);
    put_alg(&tmp, prof->digest, 0);
    put_wrap(&sd, 0x31, &tmp);
    put_oid(&encap, prof->data);
    if (c->data) {
        put_tlv(&tmp, 0x04, c->data, c->len);
        put_wrap(&encap, 0xA0, &tmp);
    }
    put_wrap(&sd, 0x30, &encap);
    PUT_I2D(&tmp, i2d_X509, c->cert);
    put_wrap(&sd, 0xA0, &tmp);
    put_wrap(&inner, 0x30, &si);
    put_wrap(&sd, 0x31, &inner);

    /* ContentInfo */
    put_wrap(&inner, 0x30, &sd);
    put_oid(&tmp, prof->signed_data);
    put_wrap(&tmp, 0xA0, &inner);
    put_wrap(&ci, 0x30, &tmp);
    if (ci.err) {
        free(ci.p);
        return -1;
    }
    *der = ci.p;
    *der_len = ci.n;
    return 0;
}

void cms_free(struct cms_signed *c)
{
    if (!c)
        return;
    X509_free(c->cert);
    free(c->data);
    free(c->attrs);
    free(c);
}
