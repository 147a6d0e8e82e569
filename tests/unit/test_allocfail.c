/* Allocation failure (issue 8): every allocation of the JSON and token
 * paths fails in turn (N = 1, 2, ... until the path needs no more), and
 * each time the path ends with a clean error (NULL, or an error code) and
 * no crash or leak — ASan+UBSan and LeakSanitizer watch the same loop in
 * the sanitizer build. malloc, calloc, realloc and strdup are wrapped at
 * link time (-Wl,--wrap, tests/CMakeLists.txt); jansson allocates through
 * the same counter with json_set_alloc_funcs. */
#include "check.h"

#include "diag/checks.h"
#include "token/token.h"
#include "util/config.h"
#include "util/file.h"
#include "util/mbedtls_compat.h"
#include "x509/cert.h"

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
    CHECK(every_failure("token listing", token) > 5);
    CHECK(every_failure("certificate check report", certificate_check) > 20);
    return check_done();
}
