/* Allocation failure (issue 8): every allocation of the JSON and token
 * paths fails in turn (N = 1, 2, ... until the path needs no more), and
 * each time the path ends with a clean error (NULL, or an error code) and
 * no crash or leak — ASan+UBSan and LeakSanitizer watch the same loop in
 * the sanitizer build. malloc, calloc, realloc and strdup are wrapped at
 * link time (-Wl,--wrap, tests/CMakeLists.txt); jansson allocates through
 * the same counter with json_set_alloc_funcs. The card paths (reading a
 * token, a login) run over SoftHSM2 through the PKCS#11 backend, a token
 * the test makes with softhsm2-util and pkcs11-tool: a real driver's whole
 * path with no pcscd needed (the module's own allocations are not ours);
 * then over tests/skf's softskf.so (UKEY_SOFTSKF) through the SKF backend,
 * with a state file and PKI from sm2pki.py. softskf parses its state with
 * the process's one Jansson on every call, so there Jansson allocates
 * without failing (the listing's JSON failed in the PKCS#11 paths already):
 * the SKF backend's own allocations are the ones that fail in turn. */
#include "check.h"

#include "diag/checks.h"
#include "profile/profile.h"
#include "token/login.h"
#include "token/pkcs11.h"
#include "token/skf.h"
#include "token/token.h"
#include "token/tokens.h"
#include "util/config.h"
#include "util/file.h"
#include "util/mbedtls_compat.h"
#include "x509/cert.h"
#include "x509/cms.h"

#include <mbedtls/pem.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);

static long fail_at, calls;

static int should_fail(void)
{
    return fail_at && ++calls == fail_at;
}

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return should_fail() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return should_fail() ? NULL : __real_strdup(s); }
static void *json_alloc(size_t n) { return __wrap_malloc(n); }

static char dir[4096];
static unsigned char der[4096];
static size_t der_len;

/* One path, run with allocation N failing for N = 1, 2, ...; `run`
 * returns 1 when it succeeded, 0 when it reported an error. Returns how
 * many allocations the path makes. */
static long every_failure(const char *name, int (*run)(void))
{
    long n;
    for (n = 1; n < 100000; n++) {
        int ok;
        calls = 0;
        fail_at = n;
        ok = run();
        fail_at = 0;
        if (calls < n) { /* the path finished before allocation N: done */
            CHECK(ok == 1);
            break;
        }
        (void)ok; /* any clean outcome will do while an allocation fails */
    }
    printf("%s: %ld allocations, each failed once\n", name, n - 1);
    return n - 1;
}

static int cert_json(void)
{
    json_t *j = x509_cert_json(der, der_len);
    int ok = j != NULL && json_object_get(j, "subject") != NULL;
    json_decref(j);
    return ok;
}

static int config(void)
{
    struct agent_config cfg;
    char path[4200], err[512];
    int rc;
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/config/full", dir);
    config_defaults(&cfg);
    rc = config_load(&cfg, path, err, sizeof err);
    CHECK(rc == 0 || err[0] != '\0'); /* a failure always says why */
    config_free(&cfg);
    return rc == 0;
}

/* A deployment profile (issue 18), every key used. */
static int profile(void)
{
    char path[4200], err[1024] = "";
    int rc;
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/profile/full", dir);
    rc = profile_check_file(path, err, sizeof err);
    CHECK(rc == 0 || err[0] != '\0'); /* a failure always says why */
    return rc == 0;
}

/* A CMS SignedData (issue 15) around a stand-in signature: only its
 * shape matters here. */
static int cms(void)
{
    static const unsigned char data[] = "signed data", sig[72] = {0x30, 0x46};
    const unsigned char *p = der;
    X509 *cert = d2i_X509(NULL, &p, (long)der_len);
    struct cms_signed *c = cert ? cms_begin(cert, data, sizeof data, 1, 0) : NULL;
    unsigned char *out = NULL;
    size_t n = 0;
    int ok = c && cms_to_sign(c, &n) && cms_finish(c, sig, sizeof sig, &out, &n) == 0 && out[0] == 0x30;
    free(out);
    cms_free(c);
    X509_free(cert);
    return ok;
}

static int token(void)
{
    struct token t;
    json_t *j;
    int ok;
    memset(&t, 0, sizeof t);
    t.driver = &piv_driver;
    snprintf(t.id, sizeof t.id, "piv-0011");
    t.n_certs = 1;
    t.certs[0].der = der;
    t.certs[0].der_len = der_len;
    snprintf(t.certs[0].id, sizeof t.certs[0].id, "9a");
    t.certs[0].slot = "PIV Authentication";
    j = token_json(&t);
    ok = j != NULL;
    json_decref(j);
    return ok;
}

static int certificate_check(void)
{
    char anchors[4200];
    struct diag_options opt = {.lang = DIAG_EN, .ca_file = anchors};
    json_t *report;
    int ok;
    snprintf(anchors, sizeof anchors, "%s/tests/data/protocol/ca.pem", dir);
    report = diag_check_certificate(&opt, der, der_len, NULL);
    ok = report != NULL && json_array_size(json_object_get(report, "checks")) == 5;
    json_decref(report);
    return ok;
}

#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"

/* The one token, read afresh (nothing cached), with `certs` certificates. */
static int listing(size_t certs)
{
    json_t *j = NULL;
    ukey_err e;
    int ok;
    tokens_forget();
    e = tokens_list(&j);
    ok = e == UKEY_OK && json_array_size(json_object_get(j, "tokens")) == 1 &&
         json_array_size(json_object_get(json_array_get(json_object_get(j, "tokens"), 0), "certificates")) == certs;
    json_decref(j);
    return ok;
}

static int p11_listing(void) { return listing(1); }

/* A login on a freshly read token; `cert_id` NULL: its login certificate. */
static int login_with(const char *cert_id)
{
    struct token_signer who = {.pin = "123456", .cert_id = cert_id};
    struct login_request req = {.origin = "https://portal.example.gov.cn",
                                .challenge = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="};
    struct token_pin pin;
    json_t *token = NULL;
    ukey_err e;
    tokens_forget();
    e = tokens_login(&who, &req, &token, &pin);
    CHECK((e == UKEY_OK) == (token != NULL));
    json_decref(token);
    return e == UKEY_OK;
}

static int p11_login(void) { return login_with(NULL); }

/* The SKF device: SM2 signing and encryption, RSA signing certificates. */
static int skf_listing(void) { return listing(3); }

/* The login default (the SM2 container: SM2-SM3), then the RSA container's key. */
static int skf_login(void) { return login_with(NULL) && login_with("c1s"); }

/* A SoftHSM2 token in a temporary directory with an EC key and its
 * self-issued login certificate; SOFTHSM2_CONF points there. */
static void make_softhsm_token(char *tmp)
{
    char cmd[8192];
    FILE *f;
    CHECK(mkdtemp(tmp) != NULL);
    snprintf(cmd, sizeof cmd, "%s/softhsm2.conf", tmp);
    CHECK((f = fopen(cmd, "w")) != NULL);
    if (f) {
        fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", tmp);
        fclose(f);
    }
    setenv("SOFTHSM2_CONF", cmd, 1);
    snprintf(cmd, sizeof cmd,
             "set -e; cd %s; exec >/dev/null 2>&1; "
             "softhsm2-util --init-token --free --label alloc --pin 123456 --so-pin 12345678; "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k.pem -out c.pem "
             "-subj /CN=alloc -days 30 -addext keyUsage=critical,digitalSignature "
             "-addext extendedKeyUsage=clientAuth -addext basicConstraints=CA:FALSE; "
             "softhsm2-util --import k.pem --token alloc --label k --id 01 --pin 123456; "
             "openssl x509 -in c.pem -outform DER -out c.der; "
             "pkcs11-tool --module %s --token-label alloc --login --pin 123456 --write-object c.der --type cert "
             "--id 01",
             tmp, SOFTHSM);
    CHECK(system(cmd) == 0);
}

/* A backend's token read and login, every allocation failing in turn;
 * then the cache is dropped. */
static void card_paths(const char *through, int (*read)(void), int (*login)(void))
{
    char name[96];
    snprintf(name, sizeof name, "token read through %s", through);
    CHECK(every_failure(name, read) > 10);
    snprintf(name, sizeof name, "login through %s", through);
    CHECK(every_failure(name, login) > 10);
    tokens_forget();
}

static void remove_dir(const char *tmp)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    const char *src = getenv("UKEY_SOURCE_DIR");
    char path[4200], *pem;
    size_t len;
    mbedtls_pem_context ctx;

    snprintf(dir, sizeof dir, "%s", src ? src : ".");
    snprintf(path, sizeof path, "%s/tests/data/protocol/es256.pem", dir);
    pem = file_read_all(path, 1 << 16, &len);
    CHECK(pem != NULL);
    mbedtls_pem_init(&ctx);
    CHECK(pem && mbedtls_pem_read_buffer(&ctx, "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----",
                                         (unsigned char *)pem, NULL, 0, &len) == 0);
    {
        const unsigned char *d = compat_pem_der(&ctx, &der_len);
        memcpy(der, d, der_len);
    }
    mbedtls_pem_free(&ctx);
    free(pem);
    json_set_alloc_funcs(json_alloc, free);

    CHECK(every_failure("certificate description", cert_json) > 5);
    CHECK(every_failure("agent.json", config) > 5);
    CHECK(every_failure("deployment profile", profile) > 10);
    CHECK(every_failure("token listing", token) > 5);
    CHECK(every_failure("CMS SignedData", cms) > 10);
    CHECK(every_failure("certificate check report", certificate_check) > 20);
    {
        char tmp[] = "/tmp/ukey-allocfail-XXXXXX", *modules[] = {SOFTHSM};
        make_softhsm_token(tmp);
        CHECK(p11_load(modules, 1) == 1);
        card_paths("a PKCS#11 module", p11_listing, p11_login);
        p11_unload();
        remove_dir(tmp);
    }
    {
        char tmp[] = "/tmp/ukey-allocfail-skf-XXXXXX", cmd[9000], *libs[] = {getenv("UKEY_SOFTSKF")};
        CHECK(libs[0] != NULL && mkdtemp(tmp) != NULL);
        snprintf(cmd, sizeof cmd, "python3 %s/tests/integration/sm2pki.py %s/pki --state %s/state.json --no-check >/dev/null",
                 dir, tmp, tmp);
        CHECK(system(cmd) == 0);
        snprintf(cmd, sizeof cmd, "%s/state.json", tmp);
        setenv("SOFTSKF_STATE", cmd, 1);
        json_set_alloc_funcs(__real_malloc, free);
        CHECK(libs[0] && skf_load(libs, 1) == 1);
        card_paths("an SKF library", skf_listing, skf_login);
        skf_unload();
        remove_dir(tmp);
    }
    return check_done();
}
