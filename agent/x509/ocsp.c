/* OCSP request and response; see ocsp.h. Parsed with mbedTLS's ASN.1
 * reader; every length is checked against the end of its container. The
 * certificates and the signature go through the certificate layer
 * (x509/crt.h), so an answer signed with SM2 is checked like any other. */
#include "x509/ocsp.h"

#include "util/clock.h"
#include "x509/crt.h"
#include "x509/ext.h"

#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#define TAG_SEQ (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)
#define TAG_CTX(n) (MBEDTLS_ASN1_CONTEXT_SPECIFIC | (n))
#define TAG_CTX_C(n) (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | (n))

static const char OID_OCSP_BASIC[] = "\x2b\x06\x01\x05\x05\x07\x30\x01\x01";
static const char OID_OCSP_NONCE[] = "\x2b\x06\x01\x05\x05\x07\x30\x01\x02";

/* The subjectPublicKey bits of a certificate (what the key hash covers). */
static int public_key_bits(X509 *crt, const unsigned char **key, size_t *len)
{
    const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(crt);
    if (!bits)
        return -1;
    *key = ASN1_STRING_get0_data(bits);
    *len = (size_t)ASN1_STRING_length(bits);
    return 0;
}

/* The issuer's name and key hashes with `md` (CertID, RFC 6960 4.1.1). */
static int issuer_hashes(X509 *issuer, mbedtls_md_type_t md, unsigned char name[64], unsigned char key[64],
                         size_t *hash_len)
{
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(md);
    const unsigned char *bits;
    unsigned char *name_der = NULL;
    size_t bits_len;
    int name_len = i2d_X509_NAME(X509_get_subject_name(issuer), &name_der), rc = -1;
    if (info && name_len > 0 && public_key_bits(issuer, &bits, &bits_len) == 0 &&
        mbedtls_md(info, name_der, (size_t)name_len, name) == 0 && mbedtls_md(info, bits, bits_len, key) == 0) {
        *hash_len = mbedtls_md_get_size(info);
        rc = 0;
    }
    OPENSSL_free(name_der);
    return rc;
}

int ocsp_request(X509 *crt, X509 *issuer, const unsigned char nonce[OCSP_NONCE_LEN], unsigned char *buf, size_t cap,
                 unsigned char **out, size_t *len)
{
    unsigned char name_hash[64], key_hash[64], *p = buf + cap, serial[X509_SERIAL_MAX];
    size_t hash_len, n = 0, certid, tbs, serial_len = x509_serial_raw(crt, serial);
    int r;
#define W(call)                                                                                                   \
    do {                                                                                                          \
        if ((r = (call)) < 0)                                                                                     \
            return -1;                                                                                            \
        n += (size_t)r;                                                                                           \
    } while (0)
    if (!serial_len || issuer_hashes(issuer, MBEDTLS_MD_SHA1, name_hash, key_hash, &hash_len) != 0)
        return -1;
    if (nonce) {
        /* requestExtensions [2] { Extensions { Extension { nonce, OCTET STRING { OCTET STRING } } } } */
        W(mbedtls_asn1_write_octet_string(&p, buf, nonce, OCSP_NONCE_LEN));
        W(mbedtls_asn1_write_len(&p, buf, OCSP_NONCE_LEN + 2));
        W(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_OCTET_STRING));
        W(mbedtls_asn1_write_oid(&p, buf, OID_OCSP_NONCE, sizeof OID_OCSP_NONCE - 1));
        W(mbedtls_asn1_write_len(&p, buf, n));
        W(mbedtls_asn1_write_tag(&p, buf, TAG_SEQ));
        W(mbedtls_asn1_write_len(&p, buf, n));
        W(mbedtls_asn1_write_tag(&p, buf, TAG_SEQ));
        W(mbedtls_asn1_write_len(&p, buf, n));
        W(mbedtls_asn1_write_tag(&p, buf, TAG_CTX_C(2)));
    }
    tbs = n;
    /* requestList { Request { CertID { alg, nameHash, keyHash, serial } } } */
    W(mbedtls_asn1_write_raw_buffer(&p, buf, serial, serial_len));
    W(mbedtls_asn1_write_len(&p, buf, serial_len));
    W(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_INTEGER));
    W(mbedtls_asn1_write_octet_string(&p, buf, key_hash, hash_len));
    W(mbedtls_asn1_write_octet_string(&p, buf, name_hash, hash_len));
    W(mbedtls_asn1_write_algorithm_identifier(&p, buf, MBEDTLS_OID_DIGEST_ALG_SHA1,
                                              MBEDTLS_OID_SIZE(MBEDTLS_OID_DIGEST_ALG_SHA1), 0));
    certid = n - tbs;
    for (int i = 0; i < 3; i++) { /* CertID, Request, requestList */
        size_t before = n;
        W(mbedtls_asn1_write_len(&p, buf, certid));
        W(mbedtls_asn1_write_tag(&p, buf, TAG_SEQ));
        certid += n - before;
    }
    W(mbedtls_asn1_write_len(&p, buf, n)); /* TBSRequest */
    W(mbedtls_asn1_write_tag(&p, buf, TAG_SEQ));
    W(mbedtls_asn1_write_len(&p, buf, n)); /* OCSPRequest */
    W(mbedtls_asn1_write_tag(&p, buf, TAG_SEQ));
#undef W
    *out = p;
    *len = n;
    return 0;
}

/* GeneralizedTime "YYYYMMDDHHMMSS[.f...]Z" to time_t; -1 if malformed. */
static int generalized_time(unsigned char **p, const unsigned char *end, time_t *t)
{
    struct tm tm = {0};
    size_t len, i;
    int v[6], width[6] = {4, 2, 2, 2, 2, 2};
    const unsigned char *s;
    if (mbedtls_asn1_get_tag(p, end, &len, MBEDTLS_ASN1_GENERALIZED_TIME) != 0 || len < 15)
        return -1;
    s = *p;
    *p += len;
    for (int f = 0; f < 6; f++) {
        v[f] = 0;
        for (int k = 0; k < width[f]; k++, s++) {
            if (*s < '0' || *s > '9')
                return -1;
            v[f] = v[f] * 10 + (*s - '0');
        }
    }
    i = 14;
    if (s[0] == '.')
        for (s++, i++; i < len - 1 && *s >= '0' && *s <= '9'; s++, i++)
            ;
    if (i != len - 1 || *s != 'Z' || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 ||
        v[5] > 60)
        return -1;
    tm.tm_year = v[0] - 1900, tm.tm_mon = v[1] - 1, tm.tm_mday = v[2];
    tm.tm_hour = v[3], tm.tm_min = v[4], tm.tm_sec = v[5];
    *t = clock_timegm(&tm);
    return 0;
}

static int fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return -1;
}

/* The nonce extension among responseExtensions [1] at [p, end): 1 if it
 * matches, 0 if there is none, -1 if it differs or is malformed. */
static int nonce_in(unsigned char *p, const unsigned char *end, const unsigned char *nonce)
{
    unsigned char *oid, *value;
    size_t len, oid_len, value_len;
    int more;
    if (mbedtls_asn1_get_tag(&p, end, &len, TAG_SEQ) != 0)
        return -1;
    end = p + len;
    while ((more = x509_ext_next(&p, end, &oid, &oid_len, &value, &value_len)) == 1) {
        unsigned char *q = value;
        size_t inner;
        if (oid_len != sizeof OID_OCSP_NONCE - 1 || memcmp(oid, OID_OCSP_NONCE, oid_len) != 0)
            continue;
        if (!nonce)
            return 0; /* we sent none: whatever it says does not matter */
        /* RFC 8954: an OCTET STRING inside; some responders send it bare. */
        if (mbedtls_asn1_get_tag(&q, value + value_len, &inner, MBEDTLS_ASN1_OCTET_STRING) == 0 &&
            q + inner == value + value_len && inner == OCSP_NONCE_LEN && memcmp(q, nonce, OCSP_NONCE_LEN) == 0)
            return 1;
        if (value_len == OCSP_NONCE_LEN && memcmp(value, nonce, OCSP_NONCE_LEN) == 0)
            return 1;
        return -1;
    }
    return more;
}

/* One SingleResponse at [*p, end) if it is about `crt`: 1 with `res` filled,
 * 0 if it is about another certificate, -1 if malformed. */
static int single_response(unsigned char **pp, const unsigned char *end, X509 *crt, X509 *issuer,
                           struct ocsp_result *res)
{
    unsigned char *p = *pp, *sr_end, *id_end, name_hash[64], key_hash[64], want[X509_SERIAL_MAX];
    mbedtls_asn1_buf alg, params, got_name, got_key, serial;
    mbedtls_md_type_t md;
    size_t len, hash_len, want_len = x509_serial_raw(crt, want);
    time_t t;
    int ours;

    if (mbedtls_asn1_get_tag(&p, end, &len, TAG_SEQ) != 0)
        return -1;
    sr_end = p + len;
    *pp = sr_end;
    if (mbedtls_asn1_get_tag(&p, sr_end, &len, TAG_SEQ) != 0)
        return -1;
    id_end = p + len;
    if (mbedtls_asn1_get_alg(&p, id_end, &alg, &params) != 0 ||
        mbedtls_asn1_get_tag(&p, id_end, &got_name.len, MBEDTLS_ASN1_OCTET_STRING) != 0)
        return -1;
    got_name.p = p, p += got_name.len;
    if (mbedtls_asn1_get_tag(&p, id_end, &got_key.len, MBEDTLS_ASN1_OCTET_STRING) != 0)
        return -1;
    got_key.p = p, p += got_key.len;
    if (mbedtls_asn1_get_tag(&p, id_end, &serial.len, MBEDTLS_ASN1_INTEGER) != 0 || p + serial.len != id_end)
        return -1;
    serial.p = p, p = id_end;
    ours = mbedtls_oid_get_md_alg(&alg, &md) == 0 && issuer_hashes(issuer, md, name_hash, key_hash, &hash_len) == 0 &&
           got_name.len == hash_len && memcmp(got_name.p, name_hash, hash_len) == 0 && got_key.len == hash_len &&
           memcmp(got_key.p, key_hash, hash_len) == 0 && serial.len == want_len &&
           memcmp(serial.p, want, serial.len) == 0;
    if (p >= sr_end)
        return -1;
    /* certStatus: good [0] NULL, revoked [1] RevokedInfo, unknown [2] NULL */
    if (*p == TAG_CTX(0) || *p == TAG_CTX(2)) {
        res->status = *p == TAG_CTX(0) ? OCSP_GOOD : OCSP_UNKNOWN;
        p++;
        if (mbedtls_asn1_get_len(&p, sr_end, &len) != 0 || len != 0)
            return -1;
    } else if (*p == TAG_CTX_C(1)) {
        unsigned char *ri_end;
        p++;
        if (mbedtls_asn1_get_len(&p, sr_end, &len) != 0)
            return -1;
        ri_end = p + len;
        if (generalized_time(&p, ri_end, &res->revoked_at) != 0)
            return -1;
        res->status = OCSP_REVOKED;
        p = ri_end; /* revocationReason [0] is not needed */
    } else {
        return -1;
    }
    if (generalized_time(&p, sr_end, &res->this_update) != 0)
        return -1;
    res->next_update = 0;
    if (p < sr_end && *p == TAG_CTX_C(0)) {
        unsigned char *nu_end;
        if (mbedtls_asn1_get_tag(&p, sr_end, &len, TAG_CTX_C(0)) != 0)
            return -1;
        nu_end = p + len;
        if (generalized_time(&p, nu_end, &t) != 0 || p != nu_end)
            return -1;
        res->next_update = t;
    }
    return ours;
}

/* 1 if `c` is a current certificate that `issuer` signed for OCSP signing
 * (RFC 6960 4.2.2.2: id-kp-OCSPSigning in its extended key usage). */
static int delegated_by(X509 *c, X509 *issuer)
{
    time_t now = time(NULL); /* the responder's certificate is current on this computer's clock */
    return x509_issued(issuer, c) && x509_time_utc(X509_get0_notBefore(c)) <= now &&
           now <= x509_time_utc(X509_get0_notAfter(c)) && (X509_get_extension_flags(c) & EXFLAG_XKUSAGE) &&
           (X509_get_extended_key_usage(c) & XKU_OCSP_SIGN);
}

/* The responder's certificate: the issuer itself, or one of `certs` that
 * the issuer signed for OCSP signing. NULL if neither. */
static X509 *responder(X509 *issuer, STACK_OF(X509) *certs, int by_key, const unsigned char *id, size_t id_len,
                       int *delegated)
{
    for (int i = -1; i < sk_X509_num(certs); i++) {
        X509 *c = i < 0 ? issuer : sk_X509_value(certs, i);
        int match;
        if (by_key) {
            unsigned char hash[20];
            const unsigned char *bits;
            size_t bits_len;
            match = id_len == sizeof hash && public_key_bits(c, &bits, &bits_len) == 0 &&
                    mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA1), bits, bits_len, hash) == 0 &&
                    memcmp(hash, id, sizeof hash) == 0;
        } else {
            const unsigned char *q = id;
            X509_NAME *name = d2i_X509_NAME(NULL, &q, (long)id_len);
            match = name && q == id + id_len && X509_NAME_cmp(name, X509_get_subject_name(c)) == 0;
            X509_NAME_free(name);
        }
        if (!match)
            continue;
        if (c == issuer) {
            *delegated = 0;
            return c;
        }
        if (delegated_by(c, issuer)) {
            *delegated = 1;
            return c;
        }
    }
    return NULL;
}

int ocsp_check(const unsigned char *der, size_t der_len, X509 *crt, X509 *issuer,
               const unsigned char nonce[OCSP_NONCE_LEN], time_t now, struct ocsp_result *res, char *err, size_t errlen)
{
    unsigned char *p = (unsigned char *)der, *end = p + der_len, *basic_end, *tbs, *tbs_end, *rid = NULL,
                  *exts = NULL, *exts_end = NULL, *sig_alg;
    mbedtls_asn1_buf sig_oid, sig_params, oid;
    mbedtls_asn1_bitstring sig;
    STACK_OF(X509) *certs = NULL;
    X509 *signer;
    size_t len, rid_len = 0, sig_alg_len;
    int status, by_key = 0, found = 0, rc = -1, nonce_state;

    memset(res, 0, sizeof *res);
    if (mbedtls_asn1_get_tag(&p, end, &len, TAG_SEQ) != 0 || p + len != end)
        return fail(err, errlen, "the OCSP answer is not an OCSPResponse");
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_ENUMERATED) != 0 || len != 1)
        return fail(err, errlen, "the OCSP answer has no response status");
    status = *p++;
    if (status != 0) {
        static const char *const names[] = {"successful", "malformedRequest", "internalError", "tryLater", "?",
                                            "sigRequired", "unauthorized"};
        snprintf(err, errlen, "the OCSP responder refused the request (%s)",
                 status < 7 ? names[status] : "unknown status");
        return -1;
    }
    if (mbedtls_asn1_get_tag(&p, end, &len, TAG_CTX_C(0)) != 0 || mbedtls_asn1_get_tag(&p, end, &len, TAG_SEQ) != 0 ||
        mbedtls_asn1_get_tag(&p, end, &oid.len, MBEDTLS_ASN1_OID) != 0)
        return fail(err, errlen, "the OCSP answer has no response bytes");
    oid.p = p;
    p += oid.len;
    if (oid.len != sizeof OID_OCSP_BASIC - 1 || memcmp(oid.p, OID_OCSP_BASIC, oid.len) != 0)
        return fail(err, errlen, "the OCSP answer is not a basic response");
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0 || p + len != end)
        return fail(err, errlen, "the OCSP basic response is truncated");
    /* BasicOCSPResponse { tbsResponseData, signatureAlgorithm, signature, certs [0] } */
    if (mbedtls_asn1_get_tag(&p, end, &len, TAG_SEQ) != 0 || p + len != end)
        return fail(err, errlen, "the OCSP basic response is malformed");
    basic_end = end;
    tbs = p;
    if (mbedtls_asn1_get_tag(&p, basic_end, &len, TAG_SEQ) != 0)
        return fail(err, errlen, "the OCSP response data is malformed");
    tbs_end = p + len;
    if (p < tbs_end && *p == TAG_CTX_C(0)) { /* version [0], v1 only */
        if (mbedtls_asn1_get_tag(&p, tbs_end, &len, TAG_CTX_C(0)) != 0)
            return fail(err, errlen, "the OCSP response version is malformed");
        p += len;
    }
    /* responderID: byName [1] Name, byKey [2] KeyHash */
    if (p < tbs_end && (*p == TAG_CTX_C(1) || *p == TAG_CTX_C(2))) {
        by_key = *p == TAG_CTX_C(2);
        if (mbedtls_asn1_get_tag(&p, tbs_end, &len, *p) != 0)
            return fail(err, errlen, "the OCSP responder id is malformed");
        rid = p;
        rid_len = len;
        p += len;
        if (by_key) {
            unsigned char *q = rid;
            if (mbedtls_asn1_get_tag(&q, rid + rid_len, &len, MBEDTLS_ASN1_OCTET_STRING) != 0)
                return fail(err, errlen, "the OCSP responder key hash is malformed");
            rid = q;
            rid_len = len;
        }
    } else {
        return fail(err, errlen, "the OCSP answer names no responder");
    }
    if (generalized_time(&p, tbs_end, &res->produced_at) != 0)
        return fail(err, errlen, "the OCSP producedAt time is malformed");
    if (mbedtls_asn1_get_tag(&p, tbs_end, &len, TAG_SEQ) != 0)
        return fail(err, errlen, "the OCSP answer has no responses");
    {
        unsigned char *list_end = p + len;
        struct ocsp_result one;
        while (p < list_end) {
            int r;
            memset(&one, 0, sizeof one);
            if ((r = single_response(&p, list_end, crt, issuer, &one)) < 0)
                return fail(err, errlen, "an OCSP single response is malformed");
            if (r == 1 && !found) {
                found = 1;
                one.produced_at = res->produced_at;
                *res = one;
            }
        }
    }
    if (p < tbs_end) {
        if (mbedtls_asn1_get_tag(&p, tbs_end, &len, TAG_CTX_C(1)) != 0 || p + len != tbs_end)
            return fail(err, errlen, "the OCSP response extensions are malformed");
        exts = p;
        exts_end = tbs_end;
    }
    p = tbs_end;
    sig_alg = p;
    if (mbedtls_asn1_get_alg(&p, basic_end, &sig_oid, &sig_params) != 0)
        return fail(err, errlen, "the OCSP signature algorithm is malformed");
    sig_alg_len = (size_t)(p - sig_alg);
    {
        /* get_bitstring wants the BIT STRING to end its container: give it its own end. */
        unsigned char *q = p;
        if (mbedtls_asn1_get_tag(&q, basic_end, &len, MBEDTLS_ASN1_BIT_STRING) != 0 ||
            mbedtls_asn1_get_bitstring(&p, q + len, &sig) != 0 || sig.unused_bits != 0)
            return fail(err, errlen, "the OCSP signature is malformed");
    }
    if (p < basic_end) { /* certs [0] EXPLICIT SEQUENCE OF Certificate */
        unsigned char *certs_end;
        if (mbedtls_asn1_get_tag(&p, basic_end, &len, TAG_CTX_C(0)) != 0 ||
            mbedtls_asn1_get_tag(&p, basic_end, &len, TAG_SEQ) != 0)
            return fail(err, errlen, "the OCSP responder certificates are malformed");
        certs_end = p + len;
        if (!(certs = sk_X509_new_null()))
            return fail(err, errlen, "out of memory");
        while (p < certs_end) {
            unsigned char *start = p;
            X509 *c = NULL;
            if (mbedtls_asn1_get_tag(&p, certs_end, &len, TAG_SEQ) != 0 ||
                !(c = x509_from_der(start, (size_t)(p - start) + len)) || !sk_X509_push(certs, c)) {
                X509_free(c);
                fail(err, errlen, "an OCSP responder certificate is malformed");
                goto out;
            }
            p += len;
        }
    }

    if (!(signer = responder(issuer, certs, by_key, rid, rid_len, &res->delegated))) {
        fail(err, errlen, "the OCSP answer is signed neither by the issuer nor by a responder it authorised");
        goto out;
    }
    if (!x509_signature_ok(X509_get0_pubkey(signer), sig_alg, sig_alg_len, sig.p, sig.len, tbs,
                           (size_t)(tbs_end - tbs))) {
        fail(err, errlen, "the OCSP signature does not verify");
        goto out;
    }
    if (!found) {
        fail(err, errlen, "the OCSP answer is about another certificate");
        goto out;
    }
    if (res->this_update > now + OCSP_CLOCK_SLACK) {
        fail(err, errlen, "the OCSP answer is dated in the future (check the clock)");
        goto out;
    }
    if (res->next_update && res->next_update + OCSP_CLOCK_SLACK < now) {
        fail(err, errlen, "the OCSP answer is stale (past its nextUpdate)");
        goto out;
    }
    nonce_state = exts ? nonce_in(exts, exts_end, nonce) : 0;
    if (nonce_state < 0) {
        fail(err, errlen, "the OCSP answer carries another nonce (a replayed answer?)");
        goto out;
    }
    res->nonce_matched = nonce_state == 1;
    rc = 0;
out:
    sk_X509_pop_free(certs, X509_free);
    return rc;
}
