/* Certificates through libcrypto, with SM2's default ID; see crt.h. */
#include "x509/crt.h"

#include "util/clock.h"
#include "util/file.h"

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CERT_FILE_MAX (4u * 1024 * 1024)

static ASN1_OCTET_STRING *default_id(void)
{
    ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();
    if (id && !ASN1_OCTET_STRING_set(id, (const unsigned char *)X509_SM2_DEFAULT_ID,
                                     (int)strlen(X509_SM2_DEFAULT_ID))) {
        ASN1_OCTET_STRING_free(id);
        return NULL;
    }
    return id;
}

/* An SM2-signed certificate gets the default ID, which X509_verify() and
 * X509_verify_cert() use when its issuer's key checks it. Only those: an
 * ID on an RSA or ECDSA check is an error in OpenSSL. 0 or -1. */
static int prepare(X509 *c)
{
    ASN1_OCTET_STRING *id;
    if (X509_get_signature_nid(c) != NID_SM2_with_SM3)
        return 0;
    if (!(id = default_id()))
        return -1;
    X509_set0_distinguishing_id(c, id);
    return 0;
}

X509 *x509_from_der(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509 *c;
    if (len == 0 || len > (size_t)INT32_MAX)
        return NULL;
    c = d2i_X509(NULL, &p, (long)len);
    if (!c || p != der + len || prepare(c) != 0) {
        X509_free(c);
        ERR_clear_error();
        return NULL;
    }
    return c;
}

int x509_stack_add(STACK_OF(X509) *sk, const unsigned char *data, size_t len)
{
    size_t skip = 0;
    int added = 0;
    while (skip < len && (data[skip] == ' ' || data[skip] == '\t' || data[skip] == '\r' || data[skip] == '\n'))
        skip++;
    if (len - skip >= 5 && memcmp(data + skip, "-----", 5) == 0) {
        BIO *bio = len <= (size_t)INT32_MAX ? BIO_new_mem_buf(data, (int)len) : NULL;
        X509 *c;
        if (!bio)
            return -1;
        /* PEM_read_bio_X509 passes over other blocks (a key, a CRL). */
        while ((c = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
            if (prepare(c) != 0 || !sk_X509_push(sk, c)) {
                X509_free(c);
                break;
            }
            added++;
        }
        BIO_free(bio);
    } else {
        X509 *c = x509_from_der(data, len);
        if (c && sk_X509_push(sk, c))
            added = 1;
        else
            X509_free(c);
    }
    ERR_clear_error(); /* the end of the PEM blocks is an "error" too */
    return added ? added : -1;
}

int x509_stack_add_file(STACK_OF(X509) *sk, const char *path)
{
    size_t len;
    char *data = file_read_all(path, CERT_FILE_MAX, &len);
    int n = data ? x509_stack_add(sk, (const unsigned char *)data, len) : -1;
    free(data);
    return n;
}

int x509_stack_add_dir(STACK_OF(X509) *sk, const char *dir)
{
    char **names = file_list(dir, "", NULL);
    int added = 0;
    if (!names)
        return -1;
    for (size_t i = 0; names[i]; i++) {
        char path[4096];
        int n;
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path)
            continue;
        if ((n = x509_stack_add_file(sk, path)) > 0)
            added += n;
    }
    file_list_free(names);
    return added ? added : -1;
}

int x509_der(X509 *c, unsigned char **der)
{
    *der = NULL;
    return i2d_X509(c, der);
}

enum x509_key_kind x509_key_kind(X509 *c, int *bits)
{
    EVP_PKEY *k = X509_get0_pubkey(c);
    char group[64];
    *bits = k ? EVP_PKEY_get_bits(k) : 0;
    if (!k)
        return X509_KEY_OTHER;
    if (EVP_PKEY_is_a(k, "RSA"))
        return X509_KEY_RSA;
    /* A key on the SM2 curve comes out of a certificate as an SM2 key. */
    if (EVP_PKEY_is_a(k, "SM2"))
        return X509_KEY_SM2;
    if (EVP_PKEY_is_a(k, "EC") && EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, NULL)) {
        if (strcmp(group, "prime256v1") == 0)
            return X509_KEY_P256;
        if (strcmp(group, "secp384r1") == 0)
            return X509_KEY_P384;
    }
    ERR_clear_error();
    return X509_KEY_OTHER;
}

int x509_signature_ok(EVP_PKEY *key, const unsigned char *alg, size_t alg_len, const unsigned char *sig,
                      size_t sig_len, const unsigned char *tbs, size_t tbs_len)
{
    const unsigned char *p;
    X509_ALGOR *algor = NULL;
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    ASN1_TYPE *data = NULL;
    ASN1_OCTET_STRING *id = NULL;
    int ok = 0;

    if (!key || !bits || alg_len > INT32_MAX || sig_len > INT32_MAX || tbs_len > INT32_MAX)
        goto out;
    p = alg;
    if (!(algor = d2i_X509_ALGOR(NULL, &p, (long)alg_len)) || p != alg + alg_len)
        goto out;
    if (!ASN1_BIT_STRING_set(bits, (unsigned char *)sig, (int)sig_len))
        goto out;
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07); /* no unused bits */
    /* The signed bytes as an ASN1_ANY SEQUENCE: OpenSSL re-encodes that
     * verbatim, so the signature is checked over exactly these bytes. */
    p = tbs;
    if (!(data = d2i_ASN1_TYPE(NULL, &p, (long)tbs_len)) || p != tbs + tbs_len ||
        ASN1_TYPE_get(data) != V_ASN1_SEQUENCE)
        goto out;
    if (EVP_PKEY_is_a(key, "SM2") && !(id = default_id()))
        goto out;
    ok = ASN1_item_verify_ex(ASN1_ITEM_rptr(ASN1_ANY), algor, bits, data, id, key, NULL, NULL) == 1;
out:
    X509_ALGOR_free(algor);
    ASN1_BIT_STRING_free(bits);
    ASN1_TYPE_free(data);
    ASN1_OCTET_STRING_free(id);
    ERR_clear_error();
    return ok;
}

int x509_issued(X509 *issuer, X509 *c)
{
    int ok = X509_NAME_cmp(X509_get_subject_name(issuer), X509_get_issuer_name(c)) == 0 &&
             X509_get0_pubkey(issuer) && X509_verify(c, X509_get0_pubkey(issuer)) == 1;
    ERR_clear_error();
    return ok;
}

int x509_can_sign(X509 *c)
{
    /* X509_get_key_usage: every bit set when there is no keyUsage. */
    return (X509_get_key_usage(c) & X509v3_KU_DIGITAL_SIGNATURE) != 0;
}

int x509_usable_for_login(X509 *c)
{
    return x509_can_sign(c) && (X509_get_extended_key_usage(c) & (XKU_SSL_CLIENT | XKU_ANYEKU)) != 0;
}

int x509_is_ca(X509 *c)
{
    return (X509_get_extension_flags(c) & EXFLAG_CA) != 0;
}

size_t x509_serial_raw(X509 *c, unsigned char out[X509_SERIAL_MAX])
{
    unsigned char *der = NULL;
    const unsigned char *p;
    long len;
    int tag, cls, n = i2d_ASN1_INTEGER(X509_get0_serialNumber(c), &der);
    size_t got = 0;
    p = der;
    if (n > 0 && !(ASN1_get_object(&p, &len, &tag, &cls, n) & 0x80) && tag == V_ASN1_INTEGER && len > 0 &&
        len <= X509_SERIAL_MAX) {
        memcpy(out, p, (size_t)len);
        got = (size_t)len;
    }
    OPENSSL_free(der);
    return got;
}

time_t x509_time_utc(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return clock_timegm(&tm);
}
