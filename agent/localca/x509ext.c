/* Hand-written X.509 extension encoders; see x509ext.h. */
#include "localca/x509ext.h"

#include <mbedtls/asn1write.h>
#include <mbedtls/oid.h>
#include <string.h>

#define CHK(expr)                      \
    do {                               \
        int r_ = (expr);               \
        if (r_ < 0)                    \
            return r_;                 \
        len += (size_t)r_;             \
    } while (0)

/* Writes one GeneralName (implicitly tagged primitive) before *p; with
 * `subtree`, wrapped in a GeneralSubtree SEQUENCE. */
static int write_general_name(unsigned char **p, unsigned char *start, unsigned tag,
                              const unsigned char *data, size_t n, int subtree)
{
    size_t len = 0;
    CHK(mbedtls_asn1_write_raw_buffer(p, start, data, n));
    CHK(mbedtls_asn1_write_len(p, start, n));
    CHK(mbedtls_asn1_write_tag(p, start, (unsigned char)(MBEDTLS_ASN1_CONTEXT_SPECIFIC | tag)));
    if (subtree) {
        CHK(mbedtls_asn1_write_len(p, start, len));
        CHK(mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    }
    return (int)len;
}

/* Writes the dNSNames then the iPAddresses, last first, so they read forward in DER. */
static int write_names(unsigned char **p, unsigned char *start, const char *const *dns,
                       size_t n_dns, const struct x509ext_ip *ips, size_t n_ips, int subtrees)
{
    size_t len = 0;
    for (size_t i = n_ips; i-- > 0;)
        CHK(write_general_name(p, start, 7, ips[i].bytes, ips[i].len, subtrees));
    for (size_t i = n_dns; i-- > 0;)
        CHK(write_general_name(p, start, 2, (const unsigned char *)dns[i], strlen(dns[i]), subtrees));
    return (int)len;
}

int x509ext_san(unsigned char *buf, size_t size, const char *const *dns, size_t n_dns,
                const struct x509ext_ip *ips, size_t n_ips, unsigned char **out)
{
    unsigned char *p = buf + size;
    size_t len = 0;
    CHK(write_names(&p, buf, dns, n_dns, ips, n_ips, 0));
    CHK(mbedtls_asn1_write_len(&p, buf, len));
    CHK(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    *out = p;
    return (int)len;
}

int x509ext_name_constraints(unsigned char *buf, size_t size, const char *const *dns,
                             size_t n_dns, const struct x509ext_ip *ranges, size_t n_ranges,
                             unsigned char **out)
{
    unsigned char *p = buf + size;
    size_t len = 0;
    CHK(write_names(&p, buf, dns, n_dns, ranges, n_ranges, 1));
    /* permittedSubtrees [0] IMPLICIT GeneralSubtrees (constructed) */
    CHK(mbedtls_asn1_write_len(&p, buf, len));
    CHK(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0));
    CHK(mbedtls_asn1_write_len(&p, buf, len));
    CHK(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    *out = p;
    return (int)len;
}

int x509ext_eku_server_auth(unsigned char *buf, size_t size, unsigned char **out)
{
    unsigned char *p = buf + size;
    size_t len = 0;
    CHK(mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)));
    CHK(mbedtls_asn1_write_len(&p, buf, len));
    CHK(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    *out = p;
    return (int)len;
}
