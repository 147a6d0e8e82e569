/*
 * Tests of the soft SKF token (softskf.c), through dlopen as the agent loads
 * a vendor library. Built twice from this file: test_softskf against
 * softskf.so (32-bit ULONG) and test_softskf64 against softskf64.so (64-bit
 * ULONG, SOFTSKF_ULONG64), each with the matching skf.h types.
 *
 *   test_softskf PYTHON SM2PKI_PY LIBRARY
 *
 * makes an SM2 test PKI and a state file with tests/integration/sm2pki.py in
 * a temporary directory, then checks: the name lists, the ABI probe (132 or
 * 136 from ExportPublicKey's size query into a zeroed 8-byte length), device
 * info, certificates and public-key blobs, PIN counters that survive a
 * reload of the library, lock and unblock, SM2 signatures that verify as
 * standard SM2-with-SM3 signatures over M with the default ID, RSA PKCS#1
 * v1.5 signatures, device events and their cancel, a hanging call, and the
 * faults. Anything missing is a failure, never a skip.
 */
#include "skf.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define DEV "SOFTSKF-SM2-0001"

static int failures;
static char dir[256], state_path[300];

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            failures++;                                                           \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
        }                                                                         \
    } while (0)
#define RC(call, want)                                                                      \
    do {                                                                                    \
        ULONG rc_ = (call);                                                                 \
        CHECK(rc_ == (ULONG)(want), "%s returned 0x%08lx, not 0x%08lx", #call,              \
              (unsigned long)rc_, (unsigned long)(want));                                   \
    } while (0)

/* ---- the library, as the agent loads it --------------------------------- */

#define SKF_FUNCTIONS(X)                                                                              \
    X(SKF_WaitForDevEvent) X(SKF_CancelWaitForDevEvent) X(SKF_EnumDev) X(SKF_ConnectDev)             \
    X(SKF_DisConnectDev) X(SKF_GetDevState) X(SKF_GetDevInfo) X(SKF_LockDev) X(SKF_UnlockDev)        \
    X(SKF_EnumApplication) X(SKF_OpenApplication) X(SKF_CloseApplication) X(SKF_GetPINInfo)          \
    X(SKF_VerifyPIN) X(SKF_ChangePIN) X(SKF_UnblockPIN) X(SKF_ClearSecureState) X(SKF_EnumContainer) \
    X(SKF_OpenContainer) X(SKF_CloseContainer) X(SKF_GetContainerType) X(SKF_ExportCertificate)      \
    X(SKF_ExportPublicKey) X(SKF_ECCSignData) X(SKF_RSASignData) X(SKF_GenRandom)

static struct {
#define FIELD(name) __typeof__(name) *name;
    SKF_FUNCTIONS(FIELD)
#undef FIELD
} skf;
static void *lib;
static const char *lib_path;

static int load_lib(void)
{
    lib = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "FAIL: dlopen %s: %s\n", lib_path, dlerror());
        return -1;
    }
#define LOAD(name)                                                        \
    if (!(*(void **)&skf.name = dlsym(lib, #name))) {                     \
        fprintf(stderr, "FAIL: %s does not export %s\n", lib_path, #name); \
        return -1;                                                        \
    }
    SKF_FUNCTIONS(LOAD)
#undef LOAD
    return 0;
}

/* ---- helpers -------------------------------------------------------------- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static json_t *read_state(void)
{
    json_t *st = json_load_file(state_path, 0, NULL);
    if (!st) {
        fprintf(stderr, "FAIL: cannot read %s\n", state_path);
        exit(1);
    }
    return st;
}

static void write_state(json_t *st)
{
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.test.tmp", state_path);
    if (json_dump_file(st, tmp, JSON_INDENT(2)) != 0 || rename(tmp, state_path) != 0) {
        fprintf(stderr, "FAIL: cannot write %s\n", state_path);
        exit(1);
    }
    json_decref(st);
}

static json_t *app_of(json_t *st)
{
    return json_array_get(json_object_get(json_array_get(json_object_get(st, "devices"), 0), "applications"), 0);
}

static void set_present(int present)
{
    json_t *st = read_state();
    json_object_set_new(json_array_get(json_object_get(st, "devices"), 0), "present", json_boolean(present));
    write_state(st);
}

/* faults := {key: value} (value stolen), or {} when key is NULL. */
static void set_fault(const char *key, json_t *value)
{
    json_t *st = read_state(), *f = json_object();
    if (key)
        json_object_set_new(f, key, value);
    json_object_set_new(st, "faults", f);
    write_state(st);
}

static json_int_t state_int(const char *key)
{
    json_t *st = read_state();
    json_int_t v = json_integer_value(json_object_get(app_of(st), key));
    json_decref(st);
    return v;
}

static X509 *read_cert(const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (!x) {
        fprintf(stderr, "FAIL: cannot read %s\n", path);
        exit(1);
    }
    return x;
}

static int zero(const BYTE *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* A session: device, application, one container. */
struct session {
    DEVHANDLE dev;
    HAPPLICATION app;
    HCONTAINER con;
};

static int open_session(struct session *s, const char *container)
{
    memset(s, 0, sizeof *s);
    RC(skf.SKF_ConnectDev(DEV, &s->dev), SAR_OK);
    RC(skf.SKF_OpenApplication(s->dev, "UKEY-APP", &s->app), SAR_OK);
    RC(skf.SKF_OpenContainer(s->app, (LPSTR)container, &s->con), SAR_OK);
    return s->con ? 0 : -1;
}

static void close_session(struct session *s)
{
    skf.SKF_CloseContainer(s->con);
    skf.SKF_CloseApplication(s->app);
    skf.SKF_DisConnectDev(s->dev);
}

/* ---- SM2: the host side of the contract (e = SM3(Z_A || M)) -------------- */

static const char *const SM2_ID = "1234567812345678";

static void sm3(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 32;
    EVP_DigestInit_ex(md, EVP_sm3(), NULL);
    EVP_DigestUpdate(md, a, alen);
    EVP_DigestUpdate(md, b, blen);
    EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
}

static int unhex(const char *hex, unsigned char *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++)
        if (sscanf(hex + 2 * i, "%2hhx", &out[i]) != 1)
            return -1;
    return (int)n;
}

/* e for message M under the public key (X, Y), default ID (research 2.2). */
static void sm2_e(const BYTE x[32], const BYTE y[32], const char *msg, unsigned char e[32])
{
    unsigned char z_in[2 + 16 + 6 * 32], z[32];
    size_t off = 0;
    z_in[off++] = 0x00;
    z_in[off++] = 0x80; /* ENTL: 128 bits */
    memcpy(z_in + off, SM2_ID, 16);
    off += 16;
    off += (size_t)unhex("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC", z_in + off);
    off += (size_t)unhex("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", z_in + off);
    off += (size_t)unhex("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7", z_in + off);
    off += (size_t)unhex("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0", z_in + off);
    memcpy(z_in + off, x, 32);
    memcpy(z_in + off + 32, y, 32);
    off += 64;
    sm3(z_in, off, "", 0, z);
    sm3(z, 32, msg, strlen(msg), e);
}

static int blob_to_der(const ECCSIGNATUREBLOB *blob, unsigned char *der, size_t *len)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(blob->r + 32, 32, NULL), *s = BN_bin2bn(blob->s + 32, 32, NULL);
    unsigned char *p = der;
    int n;
    ECDSA_SIG_set0(sig, r, s);
    n = i2d_ECDSA_SIG(sig, &p);
    ECDSA_SIG_free(sig);
    *len = n > 0 ? (size_t)n : 0;
    return n > 0 ? 0 : -1;
}

/* The token's signature over e, checked as the digest itself (EVP_PKEY_verify). */
static int verifies_over_e(EVP_PKEY *pub, const ECCSIGNATUREBLOB *blob, const unsigned char e[32])
{
    unsigned char der[80];
    size_t len;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
    int ok = blob_to_der(blob, der, &len) == 0 && ctx && EVP_PKEY_verify_init(ctx) == 1 &&
             EVP_PKEY_verify(ctx, der, len, e, 32) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* ... and as a standard SM2-with-SM3 signature over M with the default ID. */
static int verifies_over_msg(EVP_PKEY *pub, const ECCSIGNATUREBLOB *blob, const char *msg)
{
    unsigned char der[80];
    size_t len;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(pub, NULL);
    int ok = 0;
    if (blob_to_der(blob, der, &len) == 0 && md && pc && EVP_PKEY_CTX_set1_id(pc, SM2_ID, 16) == 1) {
        EVP_MD_CTX_set_pkey_ctx(md, pc);
        ok = EVP_DigestVerifyInit(md, NULL, EVP_sm3(), NULL, pub) == 1 &&
             EVP_DigestVerify(md, der, len, (const unsigned char *)msg, strlen(msg)) == 1;
    }
    EVP_MD_CTX_free(md);
    EVP_PKEY_CTX_free(pc);
    return ok;
}

/* ---- the PKI itself, through the C API --------------------------------------
 * sm2pki.py checks each link with the CLI; here the whole 3-level SM2 chain
 * goes through X509_verify_cert with the ID set on every certificate, which
 * the CLI cannot do (openssl#23471). OpenSSL 3.0 has no way to set the ID on
 * a CRL, so X509_V_FLAG_CRL_CHECK fails an SM2 CRL signed with the ID ("CRL
 * signature failure"): the CRL's signature is checked here by hand, over
 * its re-encoded tbsCertList, as the agent has to. */

static X509 *read_cert_id(const char *name)
{
    X509 *x = read_cert(name);
    ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(id, (const unsigned char *)SM2_ID, 16);
    X509_set0_distinguishing_id(x, id); /* a fresh object per certificate */
    return x;
}

static int chain_ok(X509 *root, X509 *inter, X509 *leaf, int *err)
{
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = 0;
    if (store && untrusted && ctx && X509_STORE_add_cert(store, root) == 1 && sk_X509_push(untrusted, inter) > 0 &&
        X509_STORE_CTX_init(ctx, store, leaf, untrusted) == 1) {
        ok = X509_verify_cert(ctx) == 1;
        *err = X509_STORE_CTX_get_error(ctx);
    }
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    return ok;
}

static void test_chain(void)
{
    X509 *root = read_cert_id("sm2-root.pem"), *inter = read_cert_id("sm2-inter.pem");
    X509 *user = read_cert_id("sm2-user.pem"), *revoked = read_cert_id("sm2-revoked.pem");
    int err = 0;
    CHECK(chain_ok(root, inter, user, &err), "the SM2 chain root -> inter -> user: %s",
          X509_verify_cert_error_string(err));
    CHECK(chain_ok(root, inter, revoked, &err), "the SM2 chain root -> inter -> revoked: %s",
          X509_verify_cert_error_string(err));

    char path[400];
    snprintf(path, sizeof path, "%s/sm2-inter.crl.pem", dir);
    FILE *f = fopen(path, "r");
    X509_CRL *crl = f ? PEM_read_X509_CRL(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    CHECK(crl != NULL, "cannot read %s", path);
    if (crl) {
        const ASN1_BIT_STRING *sig = NULL;
        unsigned char *tbs = NULL;
        int tbslen = i2d_re_X509_CRL_tbs(crl, &tbs);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(X509_get0_pubkey(inter), NULL);
        X509_REVOKED *entry = NULL;
        X509_CRL_get0_signature(crl, &sig, NULL);
        int ok = tbslen > 0 && md && pc && EVP_PKEY_CTX_set1_id(pc, SM2_ID, 16) == 1;
        if (ok) {
            EVP_MD_CTX_set_pkey_ctx(md, pc);
            ok = EVP_DigestVerifyInit(md, NULL, EVP_sm3(), NULL, X509_get0_pubkey(inter)) == 1 &&
                 EVP_DigestVerify(md, sig->data, (size_t)sig->length, tbs, (size_t)tbslen) == 1;
        }
        CHECK(ok, "the SM2 CRL's signature (SM3, ID 1234567812345678) does not verify");
        CHECK(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(inter)) == 0, "CRL issuer");
        CHECK(X509_CRL_get0_by_cert(crl, &entry, revoked) == 1, "the CRL does not list the revoked certificate");
        CHECK(X509_CRL_get0_by_cert(crl, &entry, user) == 0, "the CRL lists the user certificate");
        EVP_MD_CTX_free(md);
        EVP_PKEY_CTX_free(pc);
        OPENSSL_free(tbs);
        X509_CRL_free(crl);
    }
    X509_free(root);
    X509_free(inter);
    X509_free(user);
    X509_free(revoked);
}

/* ---- the tests ------------------------------------------------------------- */

static void test_lists(void)
{
    char buf[256];
    ULONG size = 0;
    RC(skf.SKF_EnumDev(TRUE, NULL, &size), SAR_OK);
    CHECK(size == sizeof DEV + 1, "EnumDev size %lu", (unsigned long)size);
    size = 5;
    RC(skf.SKF_EnumDev(TRUE, buf, &size), SAR_BUFFER_TOO_SMALL);
    CHECK(size == sizeof DEV + 1, "EnumDev size after too small %lu", (unsigned long)size);
    size = sizeof buf;
    memset(buf, 'x', sizeof buf);
    RC(skf.SKF_EnumDev(TRUE, buf, &size), SAR_OK);
    CHECK(size == sizeof DEV + 1 && memcmp(buf, DEV "\0", sizeof DEV + 1) == 0, "EnumDev list");

    struct session s;
    if (open_session(&s, "SM2-CONTAINER") != 0)
        return;
    size = sizeof buf;
    RC(skf.SKF_EnumApplication(s.dev, buf, &size), SAR_OK);
    CHECK(size == 10 && memcmp(buf, "UKEY-APP\0", 10) == 0, "EnumApplication (size %lu)", (unsigned long)size);
    size = 0;
    RC(skf.SKF_EnumContainer(s.app, NULL, &size), SAR_OK);
    CHECK(size == 29, "EnumContainer size %lu", (unsigned long)size);
    size = sizeof buf;
    RC(skf.SKF_EnumContainer(s.app, buf, &size), SAR_OK);
    CHECK(size == 29 && memcmp(buf, "SM2-CONTAINER\0RSA-CONTAINER\0", 29) == 0, "EnumContainer list");

    ULONG state = 9;
    RC(skf.SKF_GetDevState(DEV, &state), SAR_OK);
    CHECK(state == DEV_PRESENT_STATE, "GetDevState %lu", (unsigned long)state);
    RC(skf.SKF_GetDevState("NO-SUCH-DEVICE", &state), SAR_OK);
    CHECK(state == DEV_ABSENT_STATE, "GetDevState of an unknown device %lu", (unsigned long)state);

    unsigned char info_buf[1024];
    DEVINFO *info = (DEVINFO *)info_buf;
    memset(info_buf, 0xee, sizeof info_buf);
    RC(skf.SKF_GetDevInfo(s.dev, info), SAR_OK);
    CHECK(info->Version.major == 1 && strcmp(info->SerialNumber, "SKF0001") == 0 &&
              strcmp(info->Manufacturer, "ukey-agent soft SKF") == 0 && strcmp(info->Label, "SM2 demo token") == 0,
          "DEVINFO strings");
    CHECK(info->AlgAsymCap == (SGD_RSA | SGD_SM2_1) && (info->AlgHashCap & SGD_SM3), "DEVINFO caps");
    CHECK(info_buf[sizeof(DEVINFO)] == 0xee, "GetDevInfo wrote past DEVINFO (%zu bytes)", sizeof(DEVINFO));

    BYTE rnd[32] = {0};
    RC(skf.SKF_GenRandom(s.dev, rnd, sizeof rnd), SAR_OK);
    CHECK(!zero(rnd, sizeof rnd), "GenRandom");

    /* Handles: closed, unknown, wrong kind. */
    HCONTAINER other;
    RC(skf.SKF_OpenContainer(s.app, "NO-SUCH", &other), SAR_INVALIDPARAMERR);
    RC(skf.SKF_OpenContainer(s.app, "RSA-CONTAINER", &other), SAR_OK);
    RC(skf.SKF_CloseContainer(other), SAR_OK);
    ULONG type;
    RC(skf.SKF_GetContainerType(other, &type), SAR_INVALIDHANDLEERR);
    RC(skf.SKF_GetContainerType((HCONTAINER)buf, &type), SAR_INVALIDHANDLEERR);
    RC(skf.SKF_GetContainerType(s.app, &type), SAR_INVALIDHANDLEERR);
    close_session(&s);
    RC(skf.SKF_GetContainerType(s.con, &type), SAR_INVALIDHANDLEERR);
}

static void test_sm2(void)
{
    struct session s;
    X509 *cert = read_cert("sm2-user.pem"), *enc = read_cert("sm2-user-enc.pem");
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    if (open_session(&s, "SM2-CONTAINER") != 0)
        goto out;
    ULONG type = 0;
    RC(skf.SKF_GetContainerType(s.con, &type), SAR_OK);
    CHECK(type == CONTAINER_SM2, "container type %lu", (unsigned long)type);

    /* Certificates: sign and encryption, DER, size query and too small. */
    unsigned char der[4096], *want = NULL;
    ULONG len = 0;
    int wlen = i2d_X509(cert, &want);
    RC(skf.SKF_ExportCertificate(s.con, TRUE, NULL, &len), SAR_OK);
    CHECK((int)len == wlen, "certificate size %lu, want %d", (unsigned long)len, wlen);
    len = 10;
    RC(skf.SKF_ExportCertificate(s.con, TRUE, der, &len), SAR_BUFFER_TOO_SMALL);
    len = sizeof der;
    RC(skf.SKF_ExportCertificate(s.con, TRUE, der, &len), SAR_OK);
    CHECK((int)len == wlen && memcmp(der, want, len) == 0, "signing certificate");
    OPENSSL_free(want);
    want = NULL;
    wlen = i2d_X509(enc, &want);
    len = sizeof der;
    RC(skf.SKF_ExportCertificate(s.con, FALSE, der, &len), SAR_OK);
    CHECK((int)len == wlen && memcmp(der, want, len) == 0, "encryption certificate");
    OPENSSL_free(want);

    /* The ABI probe: a zeroed 8-byte length, NULL buffer. */
    uint64_t probe = 0;
    RC(skf.SKF_ExportPublicKey(s.con, TRUE, NULL, (ULONG *)&probe), SAR_OK);
#ifdef SOFTSKF_ULONG64
    CHECK(probe == 136, "ABI probe %llu, want 136", (unsigned long long)probe);
#else
    CHECK(probe == 132, "ABI probe %llu, want 132", (unsigned long long)probe);
#endif

    ECCPUBLICKEYBLOB blob;
    unsigned char point[65];
    size_t plen = 0;
    len = sizeof blob;
    RC(skf.SKF_ExportPublicKey(s.con, TRUE, (BYTE *)&blob, &len), SAR_OK);
    EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof point, &plen);
    CHECK(len == sizeof blob && blob.BitLen == 256 && zero(blob.XCoordinate, 32) && zero(blob.YCoordinate, 32) &&
              plen == 65 && memcmp(blob.XCoordinate + 32, point + 1, 32) == 0 &&
              memcmp(blob.YCoordinate + 32, point + 33, 32) == 0,
          "ECCPUBLICKEYBLOB matches the certificate");

    /* Signing needs the user PIN; the counter is written back. */
    unsigned char e[32];
    ECCSIGNATUREBLOB sig;
    ULONG retry = 99, max = 0, remain = 0;
    BOOL dflt = TRUE;
    const char *msg = "origin-hash || nonce-hash, as the agent signs it";
    sm2_e(blob.XCoordinate + 32, blob.YCoordinate + 32, msg, e);
    RC(skf.SKF_ECCSignData(s.con, e, 32, &sig), SAR_USER_NOT_LOGGED_IN);
    RC(skf.SKF_GetPINInfo(s.app, USER_TYPE, &max, &remain, &dflt), SAR_OK);
    CHECK(max == 6 && remain == 6 && dflt == FALSE, "PIN info %lu/%lu/%ld", (unsigned long)max,
          (unsigned long)remain, (long)dflt);
    RC(skf.SKF_VerifyPIN(s.app, USER_TYPE, "000000", &retry), SAR_PIN_INCORRECT);
    CHECK(retry == 5, "retries after a wrong PIN: %lu", (unsigned long)retry);
    CHECK(state_int("pin_retries_left") == 5, "the counter was not written back");

    /* A reload of the library keeps the counter (it lives in the file). */
    close_session(&s);
    dlclose(lib);
    if (load_lib() != 0 || open_session(&s, "SM2-CONTAINER") != 0) {
        failures++;
        goto out;
    }
    RC(skf.SKF_GetPINInfo(s.app, USER_TYPE, &max, &remain, &dflt), SAR_OK);
    CHECK(remain == 5, "retries after a reload: %lu", (unsigned long)remain);
    RC(skf.SKF_VerifyPIN(s.app, USER_TYPE, "123456", &retry), SAR_OK);
    CHECK(state_int("pin_retries_left") == 6, "a right PIN did not reset the counter");

    RC(skf.SKF_ECCSignData(s.con, e, 31, &sig), SAR_INDATALENERR);
    memset(&sig, 0xee, sizeof sig);
    RC(skf.SKF_ECCSignData(s.con, e, 32, &sig), SAR_OK);
    CHECK(zero(sig.r, 32) && zero(sig.s, 32), "r and s are not right-aligned");
    CHECK(verifies_over_e(pub, &sig, e), "the signature does not verify over e");
    CHECK(verifies_over_msg(pub, &sig, msg), "the signature does not verify over M with the default ID");

    /* The faults of the signature. */
    set_fault("bad_signature", json_string("wrong"));
    RC(skf.SKF_ECCSignData(s.con, e, 32, &sig), SAR_OK);
    CHECK(zero(sig.r, 32) && !verifies_over_e(pub, &sig, e), "bad_signature wrong");
    set_fault("bad_signature", json_string("garbage"));
    RC(skf.SKF_ECCSignData(s.con, e, 32, &sig), SAR_OK);
    CHECK(!verifies_over_e(pub, &sig, e), "bad_signature garbage");
    set_fault("bad_signature", json_string("misaligned"));
    RC(skf.SKF_ECCSignData(s.con, e, 32, &sig), SAR_OK);
    CHECK(!zero(sig.r, 32) && !zero(sig.s, 32), "bad_signature misaligned");
    set_fault("pubkey_mismatch", json_true());
    ECCPUBLICKEYBLOB other;
    len = sizeof other;
    RC(skf.SKF_ExportPublicKey(s.con, TRUE, (BYTE *)&other, &len), SAR_OK);
    CHECK(memcmp(other.XCoordinate, blob.XCoordinate, 64) != 0, "pubkey_mismatch");
    set_fault("bad_cert", json_true());
    const unsigned char *p = der;
    len = sizeof der;
    RC(skf.SKF_ExportCertificate(s.con, TRUE, der, &len), SAR_OK);
    X509 *junk = d2i_X509(NULL, &p, (long)len);
    CHECK(len == 200 && !junk, "bad_cert");
    X509_free(junk);
    set_fault(NULL, NULL);

    RC(skf.SKF_ClearSecureState(s.app), SAR_OK);
    RC(skf.SKF_ECCSignData(s.con, e, 32, &sig), SAR_USER_NOT_LOGGED_IN);
    close_session(&s);
out:
    X509_free(cert);
    X509_free(enc);
}

static void test_rsa(void)
{
    struct session s;
    X509 *cert = read_cert("rsa-user.pem");
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    BIGNUM *n = NULL;
    if (open_session(&s, "RSA-CONTAINER") != 0)
        goto out;
    ULONG type = 0, len, retry;
    RC(skf.SKF_GetContainerType(s.con, &type), SAR_OK);
    CHECK(type == CONTAINER_RSA, "container type %lu", (unsigned long)type);
    RSAPUBLICKEYBLOB blob;
    unsigned char modulus[256];
    len = sizeof blob;
    RC(skf.SKF_ExportPublicKey(s.con, TRUE, (BYTE *)&blob, &len), SAR_OK);
    EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &n);
    BN_bn2binpad(n, modulus, sizeof modulus);
    CHECK(len == sizeof blob && blob.AlgID == SGD_RSA && blob.BitLen == 2048 &&
              memcmp(blob.Modulus, modulus, 256) == 0 && memcmp(blob.PublicExponent, "\0\1\0\1", 4) == 0,
          "RSAPUBLICKEYBLOB");
    RC(skf.SKF_ExportCertificate(s.con, FALSE, NULL, &len), SAR_CERTNOTFOUNTERR);

    /* DigestInfo(SHA-256) in, PKCS#1 v1.5 signature out. */
    static const unsigned char prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                           0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    unsigned char di[sizeof prefix + 32], hash[32], sig[512], big[246] = {0};
    memcpy(di, prefix, sizeof prefix);
    EVP_Digest("data", 4, hash, NULL, EVP_sha256(), NULL);
    memcpy(di + sizeof prefix, hash, 32);
    len = 0;
    RC(skf.SKF_RSASignData(s.con, di, sizeof di, NULL, &len), SAR_OK);
    CHECK(len == 256, "RSA signature size %lu", (unsigned long)len);
    len = sizeof sig;
    RC(skf.SKF_RSASignData(s.con, di, sizeof di, sig, &len), SAR_USER_NOT_LOGGED_IN);
    RC(skf.SKF_VerifyPIN(s.app, USER_TYPE, "123456", &retry), SAR_OK);
    RC(skf.SKF_RSASignData(s.con, big, sizeof big, sig, &len), SAR_INDATALENERR);
    len = 100;
    RC(skf.SKF_RSASignData(s.con, di, sizeof di, sig, &len), SAR_BUFFER_TOO_SMALL);
    len = sizeof sig;
    RC(skf.SKF_RSASignData(s.con, di, sizeof di, sig, &len), SAR_OK);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
    CHECK(len == 256 && ctx && EVP_PKEY_verify_init(ctx) == 1 &&
              EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
              EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 && EVP_PKEY_verify(ctx, sig, len, hash, 32) == 1,
          "the RSA signature does not verify");
    EVP_PKEY_CTX_free(ctx);
    ECCSIGNATUREBLOB esig;
    RC(skf.SKF_ECCSignData(s.con, hash, 32, &esig), SAR_KEYUSAGEERR);
    close_session(&s);
out:
    BN_free(n);
    X509_free(cert);
}

static void test_pins(void)
{
    struct session s;
    ULONG retry = 99, max, remain;
    BOOL dflt;
    if (open_session(&s, "SM2-CONTAINER") != 0)
        return;
    for (int i = 5; i >= 1; i--) {
        RC(skf.SKF_VerifyPIN(s.app, USER_TYPE, "999999", &retry), SAR_PIN_INCORRECT);
        CHECK(retry == (ULONG)i, "retries %lu, want %d", (unsigned long)retry, i);
    }
    RC(skf.SKF_VerifyPIN(s.app, USER_TYPE, "999999", &retry), SAR_PIN_LOCKED);
    CHECK(retry == 0, "retries when locked %lu", (unsigned long)retry);
    RC(skf.SKF_VerifyPIN(s.app, USER_TYPE, "123456", &retry), SAR_PIN_LOCKED);
    RC(skf.SKF_GetPINInfo(s.app, USER_TYPE, &max, &remain, &dflt), SAR_OK);
    CHECK(remain == 0, "remaining when locked %lu", (unsigned long)remain);
    RC(skf.SKF_UnblockPIN(s.app, "00000000", "654321", &retry), SAR_PIN_INCORRECT);
    CHECK(retry == 9 && state_int("admin_retries_left") == 9, "admin retries %lu", (unsigned long)retry);
    RC(skf.SKF_UnblockPIN(s.app, "12345678", "654321", &retry), SAR_OK);
    CHECK(state_int("admin_retries_left") == 10 && state_int("pin_retries_left") == 6, "unblock resets");
    RC(skf.SKF_VerifyPIN(s.app, USER_TYPE, "654321", &retry), SAR_OK);
    RC(skf.SKF_ChangePIN(s.app, USER_TYPE, "000000", "123456", &retry), SAR_PIN_INCORRECT);
    CHECK(retry == 5, "ChangePIN counts a wrong old PIN: %lu", (unsigned long)retry);
    RC(skf.SKF_ChangePIN(s.app, USER_TYPE, "654321", "123456", &retry), SAR_OK);
    RC(skf.SKF_VerifyPIN(s.app, USER_TYPE, "123456", &retry), SAR_OK);
    RC(skf.SKF_VerifyPIN(s.app, 7, "123456", &retry), SAR_USER_TYPE_INVALID);
    RC(skf.SKF_GetPINInfo(s.app, ADMIN_TYPE, &max, &remain, &dflt), SAR_OK);
    CHECK(max == 10 && remain == 10, "admin PIN info %lu/%lu", (unsigned long)max, (unsigned long)remain);
    close_session(&s);
}

/* ---- events and hangs ------------------------------------------------------ */

struct waiter {
    pthread_t thread;
    char name[64];
    ULONG len, event;
    ULONG rc;
    volatile int done;
    int is_enum;
};

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;
    if (w->is_enum) {
        w->len = sizeof w->name;
        w->rc = skf.SKF_EnumDev(TRUE, w->name, &w->len);
    } else {
        w->len = sizeof w->name;
        w->rc = skf.SKF_WaitForDevEvent(w->name, &w->len, &w->event);
    }
    w->done = 1;
    return NULL;
}

static void start(struct waiter *w, int is_enum)
{
    memset(w, 0, sizeof *w);
    w->is_enum = is_enum;
    w->event = 99;
    pthread_create(&w->thread, NULL, wait_thread, w);
}

/* Waits up to ms for the thread; 1 when it has finished (and is joined). */
static int finished(struct waiter *w, long ms)
{
    double until = now_ms() + ms;
    while (!w->done && now_ms() < until)
        sleep_ms(5);
    if (!w->done)
        return 0;
    pthread_join(w->thread, NULL);
    return 1;
}

static void test_events(void)
{
    struct waiter w;
    struct session s;
    if (open_session(&s, "SM2-CONTAINER") != 0)
        return;

    start(&w, 0);
    sleep_ms(120);
    CHECK(!w.done, "WaitForDevEvent returned with nothing to report");
    /* The other calls go on while a thread waits. */
    unsigned char info[1024];
    double t = now_ms();
    RC(skf.SKF_GetDevInfo(s.dev, (DEVINFO *)info), SAR_OK);
    CHECK(now_ms() - t < 500, "GetDevInfo took %.0f ms during a wait", now_ms() - t);
    set_present(0);
    if (finished(&w, 1000)) {
        CHECK(w.rc == SAR_OK && w.event == SKF_EVENT_REMOVED && strcmp(w.name, DEV) == 0 && w.len == sizeof DEV,
              "removal event: rc 0x%lx event %lu name %s", (unsigned long)w.rc, (unsigned long)w.event, w.name);
    } else {
        CHECK(0, "no removal event");
        skf.SKF_CancelWaitForDevEvent();
        finished(&w, 1000);
    }

    /* A removed device: its handles are dead, the present list is empty. */
    ULONG size = 0;
    RC(skf.SKF_GetDevInfo(s.dev, (DEVINFO *)info), SAR_DEVICE_REMOVED);
    RC(skf.SKF_EnumDev(TRUE, NULL, &size), SAR_OK);
    CHECK(size == 1, "EnumDev(TRUE) without a device: size %lu", (unsigned long)size);
    RC(skf.SKF_EnumDev(FALSE, NULL, &size), SAR_OK);
    CHECK(size == sizeof DEV + 1, "EnumDev(FALSE) lists the absent device: size %lu", (unsigned long)size);
    DEVHANDLE dev;
    RC(skf.SKF_ConnectDev(DEV, &dev), SAR_DEVICE_REMOVED);

    start(&w, 0);
    sleep_ms(60);
    set_present(1);
    CHECK(finished(&w, 1000) && w.rc == SAR_OK && w.event == SKF_EVENT_INSERTED && strcmp(w.name, DEV) == 0,
          "insertion event");
    /* The old handles stay dead after a reinsertion; a new connection works. */
    RC(skf.SKF_GetDevInfo(s.dev, (DEVINFO *)info), SAR_DEVICE_REMOVED);
    close_session(&s);
    if (open_session(&s, "SM2-CONTAINER") == 0)
        close_session(&s);

    /* Cancel releases a blocked wait promptly: SAR_OK, event 0. */
    start(&w, 0);
    sleep_ms(100);
    double t0 = now_ms();
    RC(skf.SKF_CancelWaitForDevEvent(), SAR_OK);
    CHECK(finished(&w, 1000) && w.rc == SAR_OK && w.event == SKF_EVENT_NONE && w.len == 0,
          "cancelled wait: rc 0x%lx event %lu", (unsigned long)w.rc, (unsigned long)w.event);
    CHECK(now_ms() - t0 < 500, "cancel took %.0f ms", now_ms() - t0);
    /* A cancel before the wait ends the next wait at once. */
    RC(skf.SKF_CancelWaitForDevEvent(), SAR_OK);
    start(&w, 0);
    CHECK(finished(&w, 1000) && w.event == SKF_EVENT_NONE, "a cancel before the wait was lost");

    /* A hanging call returns once it is taken off the list. */
    json_t *hang = json_array();
    json_array_append_new(hang, json_string("SKF_EnumDev"));
    set_fault("hang", hang);
    start(&w, 1);
    sleep_ms(150);
    CHECK(!w.done, "SKF_EnumDev did not hang");
    ULONG devstate = 9;
    t = now_ms();
    RC(skf.SKF_GetDevState(DEV, &devstate), SAR_OK); /* a hang holds up only its own thread */
    CHECK(devstate == DEV_PRESENT_STATE && now_ms() - t < 500, "GetDevState during a hang");
    set_fault(NULL, NULL);
    CHECK(finished(&w, 1000) && w.rc == SAR_OK && strcmp(w.name, DEV) == 0, "SKF_EnumDev after the hang");
}

static void test_list_faults(void)
{
    struct session s;
    if (open_session(&s, "SM2-CONTAINER") != 0)
        return;
    char buf[64];
    ULONG size = 0;
    set_fault("bad_name_list", json_true());
    RC(skf.SKF_EnumDev(TRUE, NULL, &size), SAR_OK);
    CHECK(size == 1024 * 1024, "bad_name_list size query %lu", (unsigned long)size);
    size = sizeof buf;
    RC(skf.SKF_EnumContainer(s.app, buf, &size), SAR_OK);
    int dbl = 0;
    for (size_t i = 0; i + 1 < sizeof buf; i++)
        dbl |= !buf[i] && !buf[i + 1];
    CHECK(size == sizeof buf && !dbl && buf[sizeof buf - 1], "bad_name_list fills the buffer without \\0\\0");

    unsigned char info[1024];
    memset(info, 0, sizeof info);
    set_fault("bad_devinfo", json_true());
    RC(skf.SKF_GetDevInfo(s.dev, (DEVINFO *)info), SAR_OK);
    CHECK(memchr(info, 0, 600) == NULL && info[600] == 0, "bad_devinfo writes 600 bytes without a NUL");
    set_fault(NULL, NULL);
    close_session(&s);
}

/* ---- setup ------------------------------------------------------------------- */

static int make_pki(const char *python, const char *script)
{
    char *argv[] = {(char *)python, (char *)script, dir, "--state", state_path, "--no-check", NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status = -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid, python, &fa, NULL, argv, environ) != 0 || waitpid(pid, &status, 0) != pid)
        status = -1;
    posix_spawn_file_actions_destroy(&fa);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "FAIL: %s %s %s did not make the PKI\n", python, script, dir);
        return -1;
    }
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s PYTHON SM2PKI_PY LIBRARY\n", argv[0]);
        return 2;
    }
    lib_path = argv[3];
    snprintf(dir, sizeof dir, "%s/softskf-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(state_path, sizeof state_path, "%s/skf.json", dir);
    double t0 = now_ms();
    if (make_pki(argv[1], argv[2]) != 0) {
        failures++;
        goto out;
    }
    fprintf(stderr, "PKI made in %.0f ms\n", now_ms() - t0);
    setenv("SOFTSKF_STATE", state_path, 1);
    if (load_lib() != 0) {
        failures++;
        goto out;
    }
    test_chain();
    test_lists();
    test_sm2();
    test_rsa();
    test_pins();
    test_events();
    test_list_faults();
    dlclose(lib);
out:
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    fprintf(stderr, "%s: %s (%d failures, %.0f ms)\n", argv[0], failures ? "FAILED" : "OK", failures,
            now_ms() - t0);
    return failures ? 1 : 0;
}
