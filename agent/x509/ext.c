/* CRL distribution points and Authority Information Access; see ext.h. */
#include "x509/ext.h"

#include <mbedtls/asn1.h>
#include <openssl/objects.h>
#include <string.h>

#define TAG_SEQ (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)
#define TAG_CTX(n) (MBEDTLS_ASN1_CONTEXT_SPECIFIC | (n))
#define TAG_CTX_C(n) (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | (n))

/* The two access methods of id-pe-authorityInfoAccess. */
static const char OID_AD_OCSP[] = "\x2b\x06\x01\x05\x05\x07\x30\x01";
static const char OID_AD_CA_ISSUERS[] = "\x2b\x06\x01\x05\x05\x07\x30\x02";

static int oid_is(const unsigned char *p, size_t len, const char *oid, size_t oid_len)
{
    return len == oid_len && memcmp(p, oid, len) == 0;
}

/* Keeps an http(s) URI of `len` bytes in the next free slot of `list`. */
static void keep(char list[][X509_URL_LEN], size_t *n, const unsigned char *uri, size_t len)
{
    if (*n >= X509_URLS_MAX || len >= X509_URL_LEN)
        return;
    if (!((len > 7 && memcmp(uri, "http://", 7) == 0) || (len > 8 && memcmp(uri, "https://", 8) == 0)))
        return;
    if (memchr(uri, '\0', len))
        return;
    memcpy(list[*n], uri, len);
    list[*n][len] = '\0';
    (*n)++;
}

/* GeneralNames at [p, end): each uniformResourceIdentifier [6] is kept. */
static int general_names(unsigned char *p, const unsigned char *end, char list[][X509_URL_LEN], size_t *n)
{
    while (p < end) {
        unsigned char tag = *p++;
        size_t len;
        if (mbedtls_asn1_get_len(&p, end, &len) != 0)
            return -1;
        if (tag == TAG_CTX(6))
            keep(list, n, p, len);
        p += len;
    }
    return 0;
}

/* CRLDistributionPoints ::= SEQUENCE OF DistributionPoint; only the
 * fullName form of distributionPoint [0] names URIs. */
static int crl_points(unsigned char *p, const unsigned char *end, struct x509_urls *out)
{
    size_t len;
    if (mbedtls_asn1_get_tag(&p, end, &len, TAG_SEQ) != 0 || p + len != end)
        return -1;
    while (p < end) {
        unsigned char *dp_end;
        if (mbedtls_asn1_get_tag(&p, end, &len, TAG_SEQ) != 0)
            return -1;
        dp_end = p + len;
        if (p < dp_end && mbedtls_asn1_get_tag(&p, dp_end, &len, TAG_CTX_C(0)) == 0) {
            unsigned char *name_end = p + len;
            if (mbedtls_asn1_get_tag(&p, name_end, &len, TAG_CTX_C(0)) == 0 &&
                general_names(p, p + len, out->crl, &out->n_crl) != 0)
                return -1;
        }
        p = dp_end;
    }
    return 0;
}

/* AuthorityInfoAccessSyntax ::= SEQUENCE OF AccessDescription
 * { accessMethod OID, accessLocation GeneralName }. */
static int info_access(unsigned char *p, const unsigned char *end, struct x509_urls *out)
{
    size_t len, oid_len;
    if (mbedtls_asn1_get_tag(&p, end, &len, TAG_SEQ) != 0 || p + len != end)
        return -1;
    while (p < end) {
        unsigned char *ad_end, *oid;
        if (mbedtls_asn1_get_tag(&p, end, &len, TAG_SEQ) != 0)
            return -1;
        ad_end = p + len;
        if (mbedtls_asn1_get_tag(&p, ad_end, &oid_len, MBEDTLS_ASN1_OID) != 0)
            return -1;
        oid = p;
        p += oid_len;
        if (oid_is(oid, oid_len, OID_AD_OCSP, sizeof OID_AD_OCSP - 1)) {
            if (general_names(p, ad_end, out->ocsp, &out->n_ocsp) != 0)
                return -1;
        } else if (oid_is(oid, oid_len, OID_AD_CA_ISSUERS, sizeof OID_AD_CA_ISSUERS - 1)) {
            if (general_names(p, ad_end, out->ca_issuers, &out->n_ca_issuers) != 0)
                return -1;
        }
        p = ad_end;
    }
    return 0;
}

int x509_ext_next(unsigned char **p, const unsigned char *end, unsigned char **oid, size_t *oid_len,
                  unsigned char **value, size_t *value_len)
{
    unsigned char *ext_end;
    size_t len;
    int critical = 0;
    if (*p >= end)
        return 0;
    if (mbedtls_asn1_get_tag(p, end, &len, TAG_SEQ) != 0)
        return -1;
    ext_end = *p + len;
    if (mbedtls_asn1_get_tag(p, ext_end, oid_len, MBEDTLS_ASN1_OID) != 0)
        return -1;
    *oid = *p;
    *p += *oid_len;
    mbedtls_asn1_get_bool(p, ext_end, &critical);
    if (mbedtls_asn1_get_tag(p, ext_end, value_len, MBEDTLS_ASN1_OCTET_STRING) != 0 || *p + *value_len != ext_end)
        return -1;
    *value = *p;
    *p = ext_end;
    return 1;
}

int x509_cert_urls(X509 *crt, struct x509_urls *out)
{
    static const struct {
        int nid;
        int (*parse)(unsigned char *p, const unsigned char *end, struct x509_urls *out);
    } kinds[] = {{NID_crl_distribution_points, crl_points}, {NID_info_access, info_access}};
    memset(out, 0, sizeof *out);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        int at = X509_get_ext_by_NID(crt, kinds[k].nid, -1);
        const ASN1_OCTET_STRING *v = at >= 0 ? X509_EXTENSION_get_data(X509_get_ext(crt, at)) : NULL;
        unsigned char *p = v ? (unsigned char *)ASN1_STRING_get0_data(v) : NULL;
        if (p && kinds[k].parse(p, p + ASN1_STRING_length(v), out) != 0)
            return -1;
    }
    return 0;
}
