/*
 * DER encoders for the certificate extensions that mbedTLS 2.28's writer
 * lacks: subjectAltName, nameConstraints, extendedKeyUsage (RFC 5280
 * 4.2.1.6, 4.2.1.10, 4.2.1.12). Each writes the extension *value* (the
 * content of extnValue) at the end of `buf`, the way mbedTLS's ASN.1 writer
 * works, and returns its length (> 0) with *out pointing at its first byte,
 * or a negative mbedTLS error.
 */
#ifndef UKEY_LOCALCA_X509EXT_H
#define UKEY_LOCALCA_X509EXT_H

#include <stddef.h>

/* An IP address (4 or 16 bytes) or, in name constraints, address||mask (8 or 32). */
struct x509ext_ip {
    unsigned char bytes[32];
    size_t len;
};

/* GeneralNames ::= SEQUENCE OF GeneralName (dNSName [2], iPAddress [7]) */
int x509ext_san(unsigned char *buf, size_t size, const char *const *dns, size_t n_dns,
                const struct x509ext_ip *ips, size_t n_ips, unsigned char **out);

/* NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees } */
int x509ext_name_constraints(unsigned char *buf, size_t size, const char *const *dns,
                             size_t n_dns, const struct x509ext_ip *ranges, size_t n_ranges,
                             unsigned char **out);

/* ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId: serverAuth only */
int x509ext_eku_server_auth(unsigned char *buf, size_t size, unsigned char **out);

#endif
