/* Host-side signature encodings; see sigenc.h. */
#include "x509/sigenc.h"

#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <string.h>

size_t sigenc_hash(mbedtls_md_type_t md, const unsigned char *in, size_t len, unsigned char out[64])
{
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(md);
    if (!info || mbedtls_md(info, in, len, out) != 0)
        return 0;
    return mbedtls_md_get_size(info);
}

size_t sigenc_digest_info(mbedtls_md_type_t md, const unsigned char *digest, unsigned char out[SIGENC_DIGEST_INFO_MAX])
{
    /* RFC 8017 9.2 note 1: the DER DigestInfo prefixes. */
    static const unsigned char sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
                                           0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    static const unsigned char sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
                                           0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
    const unsigned char *prefix = md == MBEDTLS_MD_SHA256 ? sha256 : md == MBEDTLS_MD_SHA384 ? sha384 : NULL;
    size_t hlen = md == MBEDTLS_MD_SHA256 ? 32 : 48;
    if (!prefix)
        return 0;
    memcpy(out, prefix, sizeof sha256);
    memcpy(out + sizeof sha256, digest, hlen);
    return sizeof sha256 + hlen;
}

int sigenc_pkcs1_v15(mbedtls_md_type_t md, const unsigned char *digest, size_t k, unsigned char *em)
{
    unsigned char t[SIGENC_DIGEST_INFO_MAX];
    size_t tlen = sigenc_digest_info(md, digest, t);
    if (tlen == 0 || k < tlen + 11)
        return -1;
    em[0] = 0x00;
    em[1] = 0x01;
    memset(em + 2, 0xff, k - tlen - 3);
    em[k - tlen - 1] = 0x00;
    memcpy(em + k - tlen, t, tlen);
    return 0;
}

/* MGF1 (RFC 8017 B.2.1): XORs mask(seed) into out[0..len). */
static int mgf1_xor(mbedtls_md_type_t md, const unsigned char *seed, size_t seed_len, unsigned char *out,
                    size_t len)
{
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(md);
    size_t hlen = mbedtls_md_get_size(info), done = 0;
    unsigned char buf[64 + 4], mask[64];
    for (unsigned counter = 0; done < len; counter++) {
        memcpy(buf, seed, seed_len);
        buf[seed_len] = (unsigned char)(counter >> 24);
        buf[seed_len + 1] = (unsigned char)(counter >> 16);
        buf[seed_len + 2] = (unsigned char)(counter >> 8);
        buf[seed_len + 3] = (unsigned char)counter;
        if (mbedtls_md(info, buf, seed_len + 4, mask) != 0)
            return -1;
        for (size_t i = 0; i < hlen && done < len; i++)
            out[done++] ^= mask[i];
    }
    return 0;
}

int sigenc_pss(mbedtls_md_type_t md, const unsigned char *digest, size_t bits,
               int (*f_rng)(void *, unsigned char *, size_t), void *p_rng, unsigned char *em)
{
    /* RFC 8017 9.1.1 EMSA-PSS-ENCODE with emBits = modBits - 1, sLen = hLen */
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(md);
    size_t hlen = info ? mbedtls_md_get_size(info) : 0, embits = bits - 1, emlen = (embits + 7) / 8;
    size_t k = (bits + 7) / 8, off = k - emlen, dblen = emlen - hlen - 1;
    unsigned char mprime[8 + 64 + 64], salt[64], h[64];
    if (!info || emlen < 2 * hlen + 2)
        return -1;
    if (f_rng(p_rng, salt, hlen) != 0)
        return -1;
    memset(mprime, 0, 8);
    memcpy(mprime + 8, digest, hlen);
    memcpy(mprime + 8 + hlen, salt, hlen);
    if (mbedtls_md(info, mprime, 8 + 2 * hlen, h) != 0)
        return -1;
    memset(em, 0, k);
    /* DB = PS (zeros) || 0x01 || salt */
    em[off + dblen - hlen - 1] = 0x01;
    memcpy(em + off + dblen - hlen, salt, hlen);
    if (mgf1_xor(md, h, hlen, em + off, dblen) != 0)
        return -1;
    em[off] &= (unsigned char)(0xff >> (8 * emlen - embits));
    memcpy(em + off + dblen, h, hlen);
    em[off + dblen + hlen] = 0xbc;
    return 0;
}

int sigenc_ecdsa_der_to_raw(const unsigned char *der, size_t len, size_t n, unsigned char *raw)
{
    unsigned char *p = (unsigned char *)der;
    const unsigned char *end = der + len;
    mbedtls_mpi r, s;
    size_t seq;
    int rc = -1;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_asn1_get_tag(&p, end, &seq, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) == 0 &&
        p + seq == end && mbedtls_asn1_get_mpi(&p, end, &r) == 0 && mbedtls_asn1_get_mpi(&p, end, &s) == 0 &&
        p == end && mbedtls_mpi_size(&r) <= n && mbedtls_mpi_size(&s) <= n &&
        mbedtls_mpi_write_binary(&r, raw, n) == 0 && mbedtls_mpi_write_binary(&s, raw + n, n) == 0)
        rc = 0;
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return rc;
}

int sigenc_ecdsa_raw_to_der(const unsigned char *raw, size_t n, unsigned char *out, size_t cap)
{
    unsigned char *p = out + cap;
    mbedtls_mpi r, s;
    size_t len = 0;
    int rc = -1, w;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_mpi_read_binary(&r, raw, n) != 0 || mbedtls_mpi_read_binary(&s, raw + n, n) != 0)
        goto out;
    if ((w = mbedtls_asn1_write_mpi(&p, out, &s)) < 0)
        goto out;
    len += (size_t)w;
    if ((w = mbedtls_asn1_write_mpi(&p, out, &r)) < 0)
        goto out;
    len += (size_t)w;
    if ((w = mbedtls_asn1_write_len(&p, out, len)) < 0)
        goto out;
    len += (size_t)w;
    if ((w = mbedtls_asn1_write_tag(&p, out, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0)
        goto out;
    len += (size_t)w;
    memmove(out, p, len);
    rc = (int)len;
out:
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return rc;
}
