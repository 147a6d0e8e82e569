/*
 * Distinguished names as readable UTF-8 ("CN=张三, O=Example"), in the
 * order the certificate stores them. Every string type (UTF8String,
 * BMPString, PrintableString, T61String as Latin-1 ...) becomes UTF-8;
 * control characters and invalid sequences become '?', so the text is
 * always valid JSON. Shared by the agent and libukeyverify.
 */
#ifndef UKEY_X509_NAME_H
#define UKEY_X509_NAME_H

#include <openssl/x509.h>
#include <stddef.h>

/* Writes `name` into out (capacity cap, always terminated, valid UTF-8);
 * `cn` (may be NULL) gets the value of the last CN. Attributes without a
 * short name appear as their dotted OID (e.g. 1.2.156.112570.148=...). */
void x509_name_format(const X509_NAME *name, char *out, size_t cap, char *cn, size_t cncap);

/* Attribute i of `name`: its short name (or dotted OID) in key, its dotted
 * OID in oid, its value as valid UTF-8 in val (each truncated to its
 * capacity, always terminated). 0, or -1 when there is no such attribute. */
int x509_name_entry(const X509_NAME *name, int i, char *key, size_t kcap, char *oid, size_t ocap, char *val,
                    size_t vcap);

#endif
