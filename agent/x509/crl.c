/* CRL judgement; see crl.h. */
#include "x509/crl.h"

#include "x509/crt.h"

#include <mbedtls/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

/* The DER of a PEM CRL (a new buffer), or NULL. */
static unsigned char *pem_to_der(const unsigned char *body, size_t len, size_t *der_len)
{
    BIO *bio = len <= (size_t)INT32_MAX ? BIO_new_mem_buf(body, (int)len) : NULL;
    unsigned char *der = NULL;
    long n = 0;
    if (bio && PEM_bytes_read_bio(&der, &n, NULL, PEM_STRING_X509_CRL, bio, NULL, NULL) == 1 && n > 0)
        *der_len = (size_t)n;
    else
        der = NULL;
    BIO_free(bio);
    ERR_clear_error();
    return der;
}

/* CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }
 * (RFC 5280 5.1): 1 if `issuer`'s key verifies the signature over tbsCertList. */
static int signed_by(const unsigned char *der, size_t len, X509 *issuer)
{
    unsigned char *p = (unsigned char *)der, *end = p + len, *tbs, *alg;
    size_t n, tbs_len, alg_len;
    mbedtls_asn1_bitstring sig;
    if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0 || p + n != end)
        return 0;
    tbs = p;
    if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return 0;
    p += n;
    tbs_len = (size_t)(p - tbs);
    alg = p;
    if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return 0;
    p += n;
    alg_len = (size_t)(p - alg);
    if (mbedtls_asn1_get_bitstring(&p, end, &sig) != 0 || sig.unused_bits != 0 || p != end)
        return 0;
    return x509_signature_ok(X509_get0_pubkey(issuer), alg, alg_len, sig.p, sig.len, tbs, tbs_len);
}

struct crl {
    X509_CRL *x;
    unsigned char *der;         /* what the signature covers, as received */
    size_t der_len;
};

struct crl *crl_parse(const unsigned char *body, size_t len)
{
    struct crl *crl = calloc(1, sizeof *crl);
    const unsigned char *p;
    if (!crl)
        return NULL;
    if (len > 0 && body[0] == '-')
        crl->der = pem_to_der(body, len, &crl->der_len);
    else if (len > 0 && len <= (size_t)INT32_MAX && (crl->der = OPENSSL_malloc(len))) {
        memcpy(crl->der, body, len);
        crl->der_len = len;
    }
    p = crl->der;
    if (!crl->der || crl->der_len > (size_t)INT32_MAX ||
        !(crl->x = d2i_X509_CRL(NULL, &p, (long)crl->der_len)) || p != crl->der + crl->der_len) {
        crl_free(crl);
        ERR_clear_error();
        return NULL;
    }
    return crl;
}

void crl_free(struct crl *crl)
{
    if (!crl)
        return;
    X509_CRL_free(crl->x);
    OPENSSL_free(crl->der);
    free(crl);
}

void crl_judge(const struct crl *crl, X509 *crt, X509 *issuer, time_t now, struct crl_check *out)
{
    X509_REVOKED *entry = NULL;
    memset(out, 0, sizeof *out);
    out->this_update = x509_time_utc(X509_CRL_get0_lastUpdate(crl->x));
    out->next_update = x509_time_utc(X509_CRL_get0_nextUpdate(crl->x));
    if (!issuer)
        out->finding = CRL_NO_ISSUER;
    else if (X509_NAME_cmp(X509_CRL_get_issuer(crl->x), X509_get_subject_name(issuer)) != 0)
        out->finding = CRL_OTHER_ISSUER;
    else if (!signed_by(crl->der, crl->der_len, issuer))
        out->finding = CRL_BAD_SIGNATURE;
    else if (X509_CRL_get0_by_serial(crl->x, &entry, X509_get0_serialNumber(crt)) == 1 && entry) {
        out->finding = CRL_REVOKED;
        out->revoked_at = x509_time_utc(X509_REVOKED_get0_revocationDate(entry));
    } else if (out->this_update > now + CRL_SLACK_S)
        out->finding = CRL_FUTURE;
    else if (out->next_update && out->next_update + CRL_SLACK_S < now)
        out->finding = CRL_STALE;
    else
        out->finding = CRL_GOOD;
    ERR_clear_error();
}

void crl_check(const unsigned char *body, size_t len, X509 *crt, X509 *issuer, time_t now, struct crl_check *out)
{
    struct crl *crl = crl_parse(body, len);
    if (!crl) {
        memset(out, 0, sizeof *out);
        out->finding = CRL_NOT_A_CRL;
        return;
    }
    crl_judge(crl, crt, issuer, now, out);
    crl_free(crl);
}
