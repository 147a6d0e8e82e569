/* Certificate description for the API; see cert.h. */
#include "x509/cert.h"

#include "x509/name.h"

#include "util/hex.h"
#include "util/mbedtls_compat.h"

#include <mbedtls/base64.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void format_time(const mbedtls_x509_time *t, char out[32])
{
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", t->year % 10000, t->mon % 100, t->day % 100,
             t->hour % 100, t->min % 100, t->sec % 100);
}

static json_t *key_usages(const mbedtls_x509_crt *crt)
{
    static const struct {
        unsigned bit;
        const char *name;
    } bits[] = {
        {MBEDTLS_X509_KU_DIGITAL_SIGNATURE, "digitalSignature"},
        {MBEDTLS_X509_KU_NON_REPUDIATION, "nonRepudiation"},
        {MBEDTLS_X509_KU_KEY_ENCIPHERMENT, "keyEncipherment"},
        {MBEDTLS_X509_KU_DATA_ENCIPHERMENT, "dataEncipherment"},
        {MBEDTLS_X509_KU_KEY_AGREEMENT, "keyAgreement"},
        {MBEDTLS_X509_KU_KEY_CERT_SIGN, "keyCertSign"},
        {MBEDTLS_X509_KU_CRL_SIGN, "cRLSign"},
    };
    json_t *list = json_array();
    if (!list || !compat_crt_has_ext(crt, MBEDTLS_X509_EXT_KEY_USAGE))
        return list;
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if (mbedtls_x509_crt_check_key_usage(crt, bits[i].bit) == 0)
            json_array_append_new(list, json_string(bits[i].name));
    return list;
}

static json_t *ext_key_usages(const mbedtls_x509_crt *crt)
{
    static const struct {
        const char *oid;
        size_t len;
        const char *name;
    } ekus[] = {
        {MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH), "clientAuth"},
        {MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH), "serverAuth"},
        {MBEDTLS_OID_EMAIL_PROTECTION, MBEDTLS_OID_SIZE(MBEDTLS_OID_EMAIL_PROTECTION), "emailProtection"},
        {MBEDTLS_OID_CODE_SIGNING, MBEDTLS_OID_SIZE(MBEDTLS_OID_CODE_SIGNING), "codeSigning"},
    };
    json_t *list = json_array();
    if (!list || !compat_crt_has_ext(crt, MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE))
        return list;
    for (size_t i = 0; i < sizeof ekus / sizeof ekus[0]; i++)
        if (mbedtls_x509_crt_check_extended_key_usage(crt, ekus[i].oid, ekus[i].len) == 0)
            json_array_append_new(list, json_string(ekus[i].name));
    return list;
}

int x509_cert_facts(const mbedtls_x509_crt *crt, json_t *obj)
{
    char subject[1024], issuer[1024], cn[256], serial[2 * 32 + 1], from[32], to[32];
    x509_name_format(&crt->subject, subject, sizeof subject, cn, sizeof cn);
    x509_name_format(&crt->issuer, issuer, sizeof issuer, NULL, 0);
    hex_encode(serial, crt->serial.p, crt->serial.len < 32 ? crt->serial.len : 32, 0);
    format_time(&crt->valid_from, from);
    format_time(&crt->valid_to, to);
    return json_object_set_new(obj, "subject", json_string(subject)) ||
           (cn[0] && json_object_set_new(obj, "subject_cn", json_string(cn))) ||
           json_object_set_new(obj, "issuer", json_string(issuer)) ||
           json_object_set_new(obj, "serial", json_string(serial)) ||
           json_object_set_new(obj, "not_before", json_string(from)) ||
           json_object_set_new(obj, "not_after", json_string(to)) ? -1 : 0;
}

json_t *x509_cert_json(const unsigned char *der, size_t len)
{
    mbedtls_x509_crt crt;
    unsigned char *b64 = NULL;
    size_t b64len = 0;
    json_t *out = NULL;

    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, der, len) != 0)
        goto done;
    mbedtls_base64_encode(NULL, 0, &b64len, der, len);
    if (!(b64 = malloc(b64len)) || mbedtls_base64_encode(b64, b64len, &b64len, der, len) != 0)
        goto done;
    out = json_pack("{s:s, s:i, s:o, s:o, s:s}",
                    "key_type", mbedtls_pk_get_type(&crt.pk) == MBEDTLS_PK_RSA ? "RSA" : "EC",
                    "key_size", (int)mbedtls_pk_get_bitlen(&crt.pk),
                    "key_usage", key_usages(&crt),
                    "ext_key_usage", ext_key_usages(&crt),
                    "der", (char *)b64);
    if (out && x509_cert_facts(&crt, out) != 0) {
        json_decref(out);
        out = NULL;
    }
done:
    free(b64);
    mbedtls_x509_crt_free(&crt);
    return out;
}
