/*
 * Vendor libraries loaded as the agent loads them (util/dynlib.h): the
 * PKCS#11 mock through the PKCS#11 backend and the soft SKF token through
 * the SKF backend, a file that is no library, and one that does not exist.
 * Built for Linux (.so) and Windows (.dll, run under Wine).
 *
 * The libraries are UKEY_P11MOCK and UKEY_SOFTSKF, else p11mock.dll and
 * softskf.dll beside this program (Windows), tests/p11mock.so and
 * tests/softskf.so (Linux). With SOFTSKF_STATE naming a
 * state file (tests/integration/sm2pki.py --state), its devices must be
 * listed too. With UKEY_FETCH_URL naming tests/unit/fetch_server.py's base
 * URL, x509_fetch is tried against it (GET, POST, redirects, bounds); with
 * UKEY_FETCH_PROXIED set too, the user's proxy settings are expected to
 * send other hosts through that server (Linux: http_proxy; Windows: the
 * Internet Options proxy or PAC file), never loopback.
 */
#include "check.h"

#include "token/pkcs11.h"
#include "token/skf.h"
#include "util/dynlib.h"
#include "x509/fetch.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#ifdef _WIN32
#include <direct.h>
#define LIB_DIR ""
#define LIB_EXT ".dll"
#define make_dir(p) _mkdir(p)
#define remove_dir(p) _rmdir(p)
#define set_env(k, v) _putenv_s((k), (v))
#else
#include <unistd.h>
#define LIB_DIR "tests/"
#define LIB_EXT ".so"
#define make_dir(p) mkdir((p), 0700)
#define remove_dir(p) rmdir(p)
#define set_env(k, v) setenv((k), (v), 1)
#endif
#define PLANTED "ukey-test-planted" LIB_EXT

/* Library `name` where the build puts it, beside this program (argv[0]). */
static void beside(const char *argv0, const char *name, char *out, size_t cap)
{
    int dir = (int)(dynlib_file_name(argv0) - argv0);
    snprintf(out, cap, "%.*s" LIB_DIR "%s" LIB_EXT, dir, argv0, name);
}

/* Copies file `from` to `to`; 0 or -1. */
static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[65536];
    size_t n;
    int rc = in && out ? 0 : -1;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        rc = fwrite(buf, 1, n, out) == n ? 0 : -1;
    if (out && fclose(out) != 0)
        rc = -1;
    if (in)
        fclose(in);
    return rc;
}

static void test_pkcs11(const char *argv0)
{
    char lib[1024], dir[1024], file[1100];
    char *paths[4] = {lib, file, "no-such-module" LIB_EXT, PLANTED};
    const char *tmp = getenv("TEMP") ? getenv("TEMP") : "/tmp";
    struct reader_info readers[P11_MAX_SLOTS];
    json_t *mods;
    FILE *f;

    if (getenv("UKEY_P11MOCK"))
        snprintf(lib, sizeof lib, "%s", getenv("UKEY_P11MOCK"));
    else
        beside(argv0, "p11mock", lib, sizeof lib);
    /* The mock's slot holds a token while its directory has "present". */
    snprintf(dir, sizeof dir, "%s/ukey-test-modules-%ld", tmp, (long)time(NULL));
    CHECK(make_dir(dir) == 0 || errno == EEXIST);
    snprintf(file, sizeof file, "%s/present", dir);
    CHECK((f = fopen(file, "w")) != NULL);
    if (f) {
        fputs("modules test", f);
        fclose(f);
    }
    set_env("UKEY_P11MOCK_DIR", dir);

    /* lib loads; `file` is no library; the third is not there; the fourth
     * is the mock again, planted in the current directory, where a bare
     * name is never looked for (Windows: System32 only). */
    CHECK(copy_file(lib, PLANTED) == 0);
    CHECK(p11_load(paths, 4) == 1);
    CHECK(p11_list(readers, P11_MAX_SLOTS) == 1);
    CHECK(strstr(readers[0].name, "p11mock") != NULL);
    mods = p11_modules_json();
    CHECK(json_array_size(mods) == 4);
    CHECK(json_is_true(json_object_get(json_array_get(mods, 0), "loaded")));
    for (size_t i = 1; i < 4; i++) {
        const char *detail =
            json_string_value(json_object_get(json_object_get(json_array_get(mods, i), "error"), "detail"));
        CHECK(detail && strncmp(detail, "cannot be loaded: ", 18) == 0 && strlen(detail) > 18);
        printf("pkcs11: %s %s\n", paths[i], detail ? detail : "(no detail)");
    }
    json_decref(mods);
    p11_unload();
    remove(PLANTED);
    remove(file);
    remove_dir(dir);
}

static void test_skf(const char *argv0)
{
    char lib[1024];
    char *paths[1] = {lib};
    struct reader_info readers[16];
    size_t n;

    if (getenv("UKEY_SOFTSKF"))
        snprintf(lib, sizeof lib, "%s", getenv("UKEY_SOFTSKF"));
    else
        beside(argv0, "softskf", lib, sizeof lib);
    CHECK(skf_load(paths, 1) == 1);
    n = skf_list(readers, 16);
    if (getenv("SOFTSKF_STATE")) {
        CHECK(n >= 1);
        for (size_t i = 0; i < n; i++)
            printf("skf: %s\n", readers[i].name);
    } else {
        printf("skf: loaded; SOFTSKF_STATE not set: no devices to list\n");
    }
    skf_unload();
}

static int fetch(const char *base, const char *path, const char *post, long timeout_s, struct x509_fetch_res *res,
                 char *err, size_t errlen)
{
    char url[512];
    struct x509_fetch_req req = {url, (const unsigned char *)post, post ? strlen(post) : 0,
                                 "Content-Type: application/ocsp-request", timeout_s};
    snprintf(url, sizeof url, "%s%s", base, path);
    return x509_fetch(&req, res, err, errlen);
}

static void test_fetch(const char *base)
{
    struct x509_fetch_res res;
    char err[256];

    CHECK(fetch(base, "/hello", NULL, 0, &res, err, sizeof err) == 0);
    CHECK(res.http_code == 200 && res.len == 5 && memcmp(res.body, "hello", 5) == 0);
    CHECK(res.date > 1700000000); /* the Date header, read */
    free(res.body);

    CHECK(fetch(base, "/echo", "\x30\x03\x0a\x01\x01", 0, &res, err, sizeof err) == 0);
    CHECK(res.http_code == 200 && res.body && strcmp((char *)res.body, "application/ocsp-request 5") == 0);
    printf("fetch: POST: %ld %s\n", res.http_code, res.body ? (char *)res.body : "(none)");
    free(res.body);

    CHECK(fetch(base, "/missing", NULL, 0, &res, err, sizeof err) == 0 && res.http_code == 404);
    free(res.body);

    CHECK(fetch(base, "/redirect/3", NULL, 0, &res, err, sizeof err) == 0);
    CHECK(res.http_code == 200 && res.len == 5 && memcmp(res.body, "hello", 5) == 0);
    free(res.body);
    CHECK(fetch(base, "/redirect/4", NULL, 0, &res, err, sizeof err) == -1 && !res.body);
    printf("fetch: 4 redirects: %s\n", err);
    CHECK(fetch(base, "/big", NULL, 0, &res, err, sizeof err) == -1 && strstr(err, "larger than"));
    printf("fetch: big: %s\n", err);
    CHECK(fetch(base, "/slow", NULL, 1, &res, err, sizeof err) == -1);
    printf("fetch: slow: %s\n", err);

    if (getenv("UKEY_FETCH_PROXIED")) {
        CHECK(fetch("http://proxied.invalid", "/crl", NULL, 0, &res, err, sizeof err) == 0);
        /* The request line's URL: WinHTTP names the port (":80"), libcurl does not. */
        CHECK(res.http_code == 200 && res.body && strncmp((char *)res.body, "proxied http://proxied.invalid", 30) == 0 &&
              strcmp((char *)res.body + res.len - 4, "/crl") == 0);
        printf("fetch: through the proxy: %ld %s\n", res.http_code, res.body ? (char *)res.body : err);
        free(res.body);
    }

    CHECK(fetch("ftp://127.0.0.1", "/x", NULL, 0, &res, err, sizeof err) == -1);
    printf("fetch: ftp: %s\n", err);
    CHECK(fetch("http://127.0.0.1:1", "/x", NULL, 2, &res, err, sizeof err) == -1);
    printf("fetch: closed port: %s\n", err);
}

int main(int argc, char **argv)
{
    (void)argc;
    test_pkcs11(argv[0]);
    test_skf(argv[0]);
    if (getenv("UKEY_FETCH_URL"))
        test_fetch(getenv("UKEY_FETCH_URL"));
    else
        printf("fetch: UKEY_FETCH_URL not set: not tried\n");
    return check_done();
}
