/*
 * agent/x509/cms.c (issue 15): SignedData around a signature made with a
 * software key standing in for the token (RSA-2048, P-256, P-384, SM2),
 * detached and attached. RSA/ECDSA: verified by `openssl cms -verify` and
 * by CMS_verify(). SM2 (GM/T 0010 OIDs, which OpenSSL's CMS does not
 * know): the OIDs are checked in `openssl asn1parse`, the signature over
 * the signed attributes with EVP (ID 1234567812345678) and the
 * messageDigest against SM3(data). Flipped bytes must fail.
 */
#include "check.h"
#include "x509/cms.h"
#include "x509/crt.h"

#include <openssl/cms.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/test_cms.XXXXXX";

static void path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static int write_file(const char *name, const unsigned char *p, size_t n)
{
    char f[256];
    path(f, sizeof f, name);
    FILE *fp = fopen(f, "wb");
    if (!fp)
        return -1;
    size_t w = fwrite(p, 1, n, fp);
    return fclose(fp) == 0 && w == n ? 0 : -1;
}

/* The test PKI: a P-256 CA and one leaf per key kind, made by openssl. */
static int make_pki(void)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && (printf '[req]\\ndistinguished_name=dn\\n[dn]\\n' > req.cnf && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key && "
             "openssl req -config req.cnf -x509 -new -key ca.key -subj /CN=cms-test-ca -days 2 -out ca.pem "
             "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign && "
             "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256.key && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.key && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:SM2 -out sm2.key && "
             "openssl genpkey -algorithm ED25519 -out ed.key && "
             "for k in rsa p256 p384 sm2 ed; do openssl req -config req.cnf -x509 -new -key $k.key "
             "-subj /CN=signer-$k -days 2 -CA ca.pem -CAkey ca.key -set_serial 0x1234567890 "
             "-addext keyUsage=digitalSignature -out $k.pem && cat $k.key >> $k.pem || exit 1; done) >/dev/null 2>&1",
             dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* dir/<kind>.pem: the certificate, then its key (either out may be NULL). */
static void load(const char *kind, X509 **cert, EVP_PKEY **key)
{
    char f[256], name[32];
    snprintf(name, sizeof name, "%s.pem", kind);
    path(f, sizeof f, name);
    FILE *fp = fopen(f, "r");
    X509 *c = fp ? PEM_read_X509(fp, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = fp ? PEM_read_PrivateKey(fp, NULL, NULL, NULL) : NULL;
    if (fp)
        fclose(fp);
    if (cert)
        *cert = c;
    else
        X509_free(c);
    if (key)
        *key = k;
    else
        EVP_PKEY_free(k);
}

/* What the token does with cms_to_sign's bytes (SM2: e = SM3(Z_A || M)),
 * or verifies them when `verify` is set. */
static int sign_or_verify(EVP_PKEY *key, const char *md_name, int sm2, int verify, const unsigned char *m, size_t mlen,
                          unsigned char *sig, size_t *sig_len)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = sm2 ? EVP_PKEY_CTX_new(key, NULL) : NULL;
    EVP_MD *md = EVP_MD_fetch(NULL, md_name, NULL);
    int ok = mctx && md && (!sm2 || pctx);
    if (ok && sm2) {
        ok = EVP_PKEY_CTX_set1_id(pctx, X509_SM2_DEFAULT_ID, sizeof X509_SM2_DEFAULT_ID - 1) == 1;
        EVP_MD_CTX_set_pkey_ctx(mctx, pctx);
    }
    if (ok && verify)
        ok = EVP_DigestVerifyInit(mctx, NULL, md, NULL, key) == 1 &&
             EVP_DigestVerify(mctx, sig, *sig_len, m, mlen) == 1;
    else if (ok)
        ok = EVP_DigestSignInit(mctx, NULL, md, NULL, key) == 1 && EVP_DigestSign(mctx, sig, sig_len, m, mlen) == 1;
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_CTX_free(pctx);
    EVP_MD_free(md);
    return ok ? 0 : -1;
}

/* `openssl cms -verify` of out.der [against the detached content data.bin]. */
static int cli_verify(int attached)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && openssl cms -verify -binary -inform DER -in out.der -CAfile ca.pem %s -out got.bin "
             ">/dev/null 2>>err.txt && cmp -s got.bin data.bin",
             dir, attached ? "" : "-content data.bin");
    return system(cmd) == 0;
}

static int api_verify(const unsigned char *der, size_t len, const unsigned char *data, size_t dlen, int attached)
{
    char ca[256];
    path(ca, sizeof ca, "ca.pem");
    const unsigned char *p = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    X509_STORE *store = X509_STORE_new();
    BIO *content = attached ? NULL : BIO_new_mem_buf(data, (int)dlen);
    int ok = cms && store && X509_STORE_load_file(store, ca) == 1 && (attached || content) &&
             CMS_verify(cms, NULL, store, content, NULL, CMS_BINARY) == 1;
    CMS_ContentInfo_free(cms);
    X509_STORE_free(store);
    BIO_free(content);
    return ok;
}

/* 1 if the SET OF Attribute `a` (each attribute under 128 bytes) is in
 * DER order: OpenSSL's verify takes the order as it comes, so it cannot
 * tell. */
static int attrs_sorted(const unsigned char *a, size_t n)
{
    size_t i = a[1] & 0x80 ? 2 + (a[1] & 0x7f) : 2, prev = 0, prev_len = 0, count = 0;
    while (i + 2 <= n && a[i] == 0x30 && a[i + 1] < 0x80 && i + 2 + a[i + 1] <= n) {
        size_t len = 2 + a[i + 1];
        if (count && memcmp(a + prev, a + i, prev_len < len ? prev_len : len) > 0)
            return 0;
        prev = i;
        prev_len = len;
        i += len;
        count++;
    }
    return i == n && count == 3;
}

/* Builds one SignedData; *der malloc'd. */
static int build(const char *kind, const char *md, int attached, const unsigned char *data, size_t dlen,
                 unsigned char **der, size_t *der_len, unsigned char **attrs, size_t *attrs_len)
{
    X509 *cert;
    EVP_PKEY *key;
    load(kind, &cert, &key);
    struct cms_signed *c = cert ? cms_begin(cert, data, dlen, attached, 1767225600) : NULL;
    unsigned char sig[1024];
    size_t sig_len = sizeof sig, n = 0;
    const unsigned char *tbs = cms_to_sign(c, &n);
    int rc = -1;
    if (tbs && n > 2 && tbs[0] == 0x31 && attrs_sorted(tbs, n) && key &&
        sign_or_verify(key, md, strcmp(kind, "sm2") == 0, 0, tbs, n, sig, &sig_len) == 0 &&
        cms_finish(c, sig, sig_len, der, der_len) == 0) {
        *attrs = malloc(n);
        memcpy(*attrs, tbs, n);
        *attrs_len = n;
        rc = 0;
    }
    cms_free(c);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

static void test_rfc5652(const char *kind, const char *md)
{
    static const unsigned char data[] = "issue 15: data signed as CMS\n\x00\xff binary";
    for (int attached = 0; attached <= 1; attached++) {
        unsigned char *der = NULL, *attrs = NULL;
        size_t len = 0, alen = 0;
        CHECK(build(kind, md, attached, data, sizeof data, &der, &len, &attrs, &alen) == 0);
        if (!der)
            continue;
        CHECK(write_file("data.bin", data, sizeof data) == 0 && write_file("out.der", der, len) == 0);
        CHECK(cli_verify(attached));
        CHECK(api_verify(der, len, data, sizeof data, attached));

        /* A flipped byte in the data: detached content or the attached copy. */
        unsigned char bad[sizeof data];
        memcpy(bad, data, sizeof data);
        bad[3] ^= 1;
        if (attached) {
            unsigned char *at = memmem(der, len, data, sizeof data);
            CHECK(at != NULL);
            if (at) {
                at[3] ^= 1;
                CHECK(write_file("out.der", der, len) == 0);
                CHECK(!cli_verify(attached));
                CHECK(!api_verify(der, len, data, sizeof data, attached));
                at[3] ^= 1;
            }
        } else {
            CHECK(write_file("data.bin", bad, sizeof bad) == 0);
            CHECK(!cli_verify(attached));
            CHECK(!api_verify(der, len, bad, sizeof bad, attached));
            CHECK(write_file("data.bin", data, sizeof data) == 0);
        }
        /* A flipped byte in the signature (the DER's last bytes). */
        der[len - 5] ^= 1;
        CHECK(write_file("out.der", der, len) == 0);
        CHECK(!cli_verify(attached));
        CHECK(!api_verify(der, len, data, sizeof data, attached));
        free(der);
        free(attrs);
    }
}

/* The last TLV of the DER is the SignerInfo's signature OCTET STRING. */
static const unsigned char *last_octets(const unsigned char *der, size_t len, size_t sig_max, size_t *n)
{
    for (size_t k = 8; k <= sig_max && k + 2 <= len; k++)
        if (der[len - k - 2] == 0x04 && der[len - k - 1] == k) {
            *n = k;
            return der + len - k;
        }
    return NULL;
}

static void test_sm2(void)
{
    static const unsigned char data[] = "SM3withSM2 CMS 国密";
    EVP_PKEY *key;
    load("sm2", NULL, &key);
    for (int attached = 0; attached <= 1; attached++) {
        unsigned char *der = NULL, *attrs = NULL;
        size_t len = 0, alen = 0;
        CHECK(build("sm2", "SM3", attached, data, sizeof data - 1, &der, &len, &attrs, &alen) == 0);
        if (!der)
            continue;
        CHECK(write_file("out.der", der, len) == 0);
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && openssl asn1parse -inform DER -in out.der > parsed.txt 2>&1 && "
                 "grep -q ':1.2.156.10197.6.1.4.2.2$' parsed.txt && grep -q ':1.2.156.10197.6.1.4.2.1$' parsed.txt && "
                 "grep -qi ':sm3$' parsed.txt && grep -qi ':SM2-with-SM3$' parsed.txt && "
                 "! grep -q ':pkcs7-signedData' parsed.txt && "
                 "grep -Eq '^ +[0-9]+:d=2 +hl=[0-9] +l= *[0-9]+ cons: SEQUENCE' parsed.txt",
                 dir);
        CHECK(system(cmd) == 0);
        snprintf(cmd, sizeof cmd, "cd '%s' && grep -q 'OCTET STRING' parsed.txt && %s", dir,
                 attached ? "grep -q ':SM3withSM2 CMS' parsed.txt || grep -q 'cont \\[ 0 \\]' parsed.txt" : "true");
        CHECK(system(cmd) == 0);

        /* The [0] IMPLICIT signedAttrs in the SignerInfo are what was signed. */
        unsigned char *at = memmem(der, len, attrs + 1, alen - 1);
        CHECK(at != NULL && at[-1] == 0xA0);
        /* messageDigest = SM3(data). */
        unsigned char md[32];
        unsigned int mdl = 0;
        CHECK(EVP_Digest(data, sizeof data - 1, md, &mdl, EVP_sm3(), NULL) == 1 && mdl == 32);
        unsigned char want[34] = {0x04, 0x20};
        memcpy(want + 2, md, 32);
        CHECK(memmem(attrs, alen, want, sizeof want) != NULL);
        /* The signature verifies over the signed attributes with the ID. */
        size_t sl = 0;
        const unsigned char *sig = last_octets(der, len, 80, &sl);
        CHECK(sig != NULL);
        if (sig) {
            unsigned char s[80];
            memcpy(s, sig, sl);
            CHECK(sign_or_verify(key, "SM3", 1, 1, attrs, alen, s, &sl) == 0);
            s[sl / 2] ^= 1;
            CHECK(sign_or_verify(key, "SM3", 1, 1, attrs, alen, s, &sl) != 0);
            attrs[alen - 1] ^= 1; /* a flipped byte in the digest */
            s[sl / 2] ^= 1;
            CHECK(sign_or_verify(key, "SM3", 1, 1, attrs, alen, s, &sl) != 0);
        }
        free(der);
        free(attrs);
    }
    EVP_PKEY_free(key);
}

static void test_bad_inputs(void)
{
    static const unsigned char data[] = "x";
    X509 *cert, *ed;
    load("p256", &cert, NULL);
    load("ed", &ed, NULL);
    CHECK(cert != NULL && ed != NULL);
    CHECK(cms_begin(NULL, data, 1, 0, 0) == NULL);
    CHECK(cms_begin(cert, NULL, 1, 0, 0) == NULL);
    CHECK(cms_begin(cert, data, 0, 1, 0) == NULL);
    CHECK(cms_begin(ed, data, 1, 0, 0) == NULL); /* not a key the agent signs with */
    size_t n = 7;
    CHECK(cms_to_sign(NULL, &n) == NULL);
    struct cms_signed *c = cms_begin(cert, data, 1, 0, 0);
    CHECK(c != NULL && cms_to_sign(c, NULL) == NULL);
    unsigned char *der = NULL;
    size_t len = 0;
    CHECK(cms_finish(NULL, data, 1, &der, &len) != 0);
    CHECK(cms_finish(c, NULL, 1, &der, &len) != 0);
    CHECK(cms_finish(c, data, 0, &der, &len) != 0);
    CHECK(cms_finish(c, data, 1, NULL, &len) != 0 && der == NULL);
    cms_free(c);
    cms_free(NULL);
    X509_free(cert);
    X509_free(ed);
}

/* signingTime: UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5652 11.3). */
static void test_signing_time(void)
{
    static const unsigned char data[] = "t";
    X509 *cert;
    load("p256", &cert, NULL);
    struct cms_signed *c = cert ? cms_begin(cert, data, 1, 0, 1767225600) : NULL; /* 2026-01-01 */
    size_t n = 0;
    const unsigned char *a = cms_to_sign(c, &n);
    CHECK(a && memmem(a, n, "\x17\x0d" "260101000000Z", 15) != NULL);
    cms_free(c);
    c = cert ? cms_begin(cert, data, 1, 0, 2524608000) : NULL; /* 2050-01-01 */
    a = cms_to_sign(c, &n);
    CHECK(a && memmem(a, n, "\x18\x0f" "20500101000000Z", 17) != NULL);
    cms_free(c);
    X509_free(cert);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    CHECK(make_pki() == 0);
    test_rfc5652("rsa", "SHA256");
    test_rfc5652("p256", "SHA256");
    test_rfc5652("p384", "SHA384");
    test_sm2();
    test_bad_inputs();
    test_signing_time();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir); /* UKEY_KEEP_TMP=1 keeps it for a look */
    if (getenv("UKEY_KEEP_TMP"))
        printf("kept %s\n", dir);
    else
        CHECK(system(cmd) == 0);
    return check_done();
}
