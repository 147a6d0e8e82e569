/* Certificate description for the API; see cert.h. */
#include "x509/cert.h"

#include "x509/crt.h"
#include "x509/name.h"

#include "util/hex.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void format_time(const ASN1_TIME *t, char out[32])
{
    time_t when = x509_time_utc(t);
    struct tm tm;
    if (!when || !gmtime_r(&when, &tm))
        snprintf(out, 32, "?");
    else
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *key_usages(X509 *crt)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } bits[] = {
        {X509v3_KU_DIGITAL_SIGNATURE, "digitalSignature"}, {X509v3_KU_NON_REPUDIATION, "nonRepudiation"},
        {X509v3_KU_KEY_ENCIPHERMENT, "keyEncipherment"},   {X509v3_KU_DATA_ENCIPHERMENT, "dataEncipherment"},
        {X509v3_KU_KEY_AGREEMENT, "keyAgreement"},         {X509v3_KU_KEY_CERT_SIGN, "keyCertSign"},
        {X509v3_KU_CRL_SIGN, "cRLSign"},
    };
    json_t *list = json_array();
    uint32_t ku = X509_get_key_usage(crt);
    if (!list || !(X509_get_extension_flags(crt) & EXFLAG_KUSAGE))
        return list;
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if (ku & bits[i].bit)
            json_array_append_new(list, json_string(bits[i].name));
    return list;
}

static json_t *ext_key_usages(X509 *crt)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } ekus[] = {
        {XKU_SSL_CLIENT, "clientAuth"},
        {XKU_SSL_SERVER, "serverAuth"},
        {XKU_SMIME, "emailProtection"},
        {XKU_CODE_SIGN, "codeSigning"},
    };
    json_t *list = json_array();
    uint32_t xku = X509_get_extended_key_usage(crt);
    if (!list || !(X509_get_extension_flags(crt) & EXFLAG_XKUSAGE))
        return list;
    for (size_t i = 0; i < sizeof ekus / sizeof ekus[0]; i++)
        if (xku & ekus[i].bit)
            json_array_append_new(list, json_string(ekus[i].name));
    return list;
}

int x509_cert_facts(X509 *crt, json_t *obj)
{
    char subject[1024], issuer[1024], cn[256], serial[2 * X509_SERIAL_MAX + 1], from[32], to[32];
    unsigned char raw[X509_SERIAL_MAX];
    size_t n = x509_serial_raw(crt, raw);
    x509_name_format(X509_get_subject_name(crt), subject, sizeof subject, cn, sizeof cn);
    x509_name_format(X509_get_issuer_name(crt), issuer, sizeof issuer, NULL, 0);
    hex_encode(serial, raw, n, 0);
    format_time(X509_get0_notBefore(crt), from);
    format_time(X509_get0_notAfter(crt), to);
    return json_object_set_new(obj, "subject", json_string(subject)) ||
           (cn[0] && json_object_set_new(obj, "subject_cn", json_string(cn))) ||
           json_object_set_new(obj, "issuer", json_string(issuer)) ||
           json_object_set_new(obj, "serial", json_string(serial)) ||
           json_object_set_new(obj, "not_before", json_string(from)) ||
           json_object_set_new(obj, "not_after", json_string(to)) ? -1 : 0;
}

/* [{"key": "CN", "oid": "2.5.4.3", "value": "张三"}, ...]: the subject's
 * attributes in the certificate's order (serialNumber, organizationIdentifier
 * and the Chinese CAs' own attributes by OID included). */
static json_t *subject_fields(X509 *crt)
{
    const X509_NAME *name = X509_get_subject_name(crt);
    json_t *list = json_array();
    char key[96], oid[96], val[1024];
    for (int i = 0; list && x509_name_entry(name, i, key, sizeof key, oid, sizeof oid, val, sizeof val) == 0; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "key", key, "oid", oid, "value", val));
    return list;
}

/* [{"oid": "1.2.156.112570.148", "value": "…"}, ...]: the extensions under
 * China's arc (1.2.156), which the old clients showed by OID (SHECA's ID
 * card number, …): a string value as UTF-8, anything else as hex. */
static json_t *cn_extensions(X509 *crt)
{
    json_t *list = json_array();
    for (int i = 0; list && i < X509_get_ext_count(crt); i++) {
        X509_EXTENSION *ext = X509_get_ext(crt, i);
        const ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(ext);
        const unsigned char *p = ASN1_STRING_get0_data(os);
        long n = ASN1_STRING_length(os);
        char oid[96], text[1024];
        ASN1_STRING *str;
        unsigned char *utf8 = NULL;
        int len;
        if (OBJ_obj2txt(oid, sizeof oid, X509_EXTENSION_get_object(ext), 1) <= 0 || strncmp(oid, "1.2.156.", 8) != 0)
            continue;
        str = d2i_ASN1_PRINTABLE(NULL, &p, n); /* any string type, one TLV */
        if (str && p == ASN1_STRING_get0_data(os) + n && (len = ASN1_STRING_to_UTF8(&utf8, str)) >= 0 &&
            (size_t)len < sizeof text && memchr(utf8, 0, (size_t)len) == NULL) {
            memcpy(text, utf8, (size_t)len);
            text[len] = '\0';
        } else { /* as hex, the first 511 bytes at most */
            size_t shown = (size_t)n < (sizeof text - 1) / 2 ? (size_t)n : (sizeof text - 1) / 2;
            ERR_clear_error();
            hex_encode(text, ASN1_STRING_get0_data(os), shown, 0);
        }
        OPENSSL_free(utf8);
        ASN1_STRING_free(str);
        json_array_append_new(list, json_pack("{s:s, s:s}", "oid", oid, "value", text));
    }
    return list;
}

json_t *x509_cert_json(const unsigned char *der, size_t len)
{
    static const char *const kinds[] = {[X509_KEY_OTHER] = "other", [X509_KEY_RSA] = "RSA", [X509_KEY_P256] = "EC",
                                        [X509_KEY_P384] = "EC", [X509_KEY_SM2] = "SM2"};
    EVP_PKEY *key;
    X509 *crt = x509_from_der(der, len);
    char *b64 = NULL;
    int bits, sig_nid;
    enum x509_key_kind kind;
    json_t *out = NULL;
    const char *sig_name;

    if (!crt || len > (size_t)INT32_MAX / 2)
        goto done;
    if (!(b64 = malloc(4 * ((len + 2) / 3) + 1)))
        goto done;
    EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
    kind = x509_key_kind(crt, &bits);
    key = X509_get0_pubkey(crt);
    sig_nid = X509_get_signature_nid(crt);
    sig_name = sig_nid != NID_undef && OBJ_nid2ln(sig_nid) ? OBJ_nid2ln(sig_nid) : "unknown";
    if (sig_nid == NID_SM2_with_SM3)
        sig_name = "SM2-with-SM3";
    out = json_pack("{s:s, s:i, s:o, s:o, s:s, s:o, s:o, s:s}", "key_type",
                    kind == X509_KEY_OTHER && key && EVP_PKEY_is_a(key, "EC") ? "EC" : kinds[kind],
                    "key_size", bits, "key_usage", key_usages(crt), "ext_key_usage", ext_key_usages(crt),
                    "signature_algorithm", sig_name, "subject_fields", subject_fields(crt), "cn_extensions",
                    cn_extensions(crt), "der", b64);
    if (out && x509_cert_facts(crt, out) != 0) {
        json_decref(out);
        out = NULL;
    }
done:
    free(b64);
    X509_free(crt);
    return out;
}

int x509_cert_role(const unsigned char *der, size_t len, int *is_ca, int *can_sign)
{
    X509 *crt = x509_from_der(der, len);
    if (!crt)
        return -1;
    *is_ca = x509_is_ca(crt);
    *can_sign = x509_can_sign(crt);
    X509_free(crt);
    return 0;
}

int x509_cert_key_is(const unsigned char *der, size_t len, enum x509_key_kind kind, const unsigned char *a,
                     size_t a_len, const unsigned char *b, size_t b_len, int *can_sign)
{
    X509 *crt = x509_from_der(der, len);
    EVP_PKEY *k = crt ? X509_get0_pubkey(crt) : NULL;
    int bits, same = 0;
    *can_sign = 0;
    if (k && kind == X509_KEY_SM2 && a_len == 64 && x509_key_kind(crt, &bits) == X509_KEY_SM2) {
        unsigned char point[65];
        size_t n = 0;
        same = EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof point, &n) &&
               n == 65 && point[0] == 0x04 && memcmp(point + 1, a, 64) == 0;
    } else if (k && kind == X509_KEY_RSA && x509_key_kind(crt, &bits) == X509_KEY_RSA && bits == 2048) {
        BIGNUM *n = NULL, *e = NULL, *want_n = BN_bin2bn(a, (int)a_len, NULL), *want_e = BN_bin2bn(b, (int)b_len, NULL);
        same = want_n && want_e && EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n) &&
               EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e) && BN_cmp(n, want_n) == 0 && BN_cmp(e, want_e) == 0;
        BN_free(n);
        BN_free(e);
        BN_free(want_n);
        BN_free(want_e);
    }
    *can_sign = same && x509_can_sign(crt);
    X509_free(crt);
    ERR_clear_error();
    return same;
}
