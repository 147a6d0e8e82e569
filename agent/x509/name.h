/*
 * Distinguished names as readable UTF-8 ("CN=张三, O=Example"): mbedTLS's
 * own formatter turns every non-ASCII byte into '?', which would lose every
 * Chinese name. Shared by the agent and libukeyverify.
 */
#ifndef UKEY_X509_NAME_H
#define UKEY_X509_NAME_H

#include <mbedtls/x509.h>
#include <stddef.h>

/* Writes `name` into out (capacity cap, always terminated, valid UTF-8);
 * `cn` (may be NULL) gets the value of the last CN. */
void x509_name_format(const mbedtls_x509_name *name, char *out, size_t cap, char *cn, size_t cncap);

#endif
