/*
 * Paths with Chinese in them through util/file.h, the default state
 * directory (util/dirs.h) and the local CA's files (localca.c and the
 * key and certificate loading of util/mbedtls_compat.h); and clock_timegm.
 * On Linux the bytes of a UTF-8 path pass through. On Windows every path
 * has to reach the wide-char API: run under Wine with LC_ALL=zh_CN.UTF-8,
 * where the ANSI code page is 936 (GBK) and a UTF-8 name handed to fopen()
 * names another file, the test checks each file under its UTF-16 name too.
 */
#include "check.h"
#include "tmp.h"

#include "localca/localca.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/dirs.h"
#include "util/file.h"
#include "util/mbedtls_compat.h"
#include "util/rng.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#include "util/wstr.h"
#include <errno.h>
#include <windows.h>
#define STATE_VAR "LOCALAPPDATA"
#define CONFIG_VAR "APPDATA"
#define SEP "\\"
#else
#define STATE_VAR "XDG_DATA_HOME"
#define CONFIG_VAR "XDG_CONFIG_HOME"
#define SEP "/"
#endif

#define CONTENT "证书 certificate\n"

static char base[1024];

/* The contents of `path` read by its UTF-16 name on Windows (what any other
 * program sees), by the UTF-8 bytes elsewhere. */
static char *read_natively(const char *path)
{
#ifdef _WIN32
    wchar_t *w = wstr_from_utf8(path);
    FILE *f = w ? _wfopen(w, L"rb") : NULL;
    char *text = f ? file_read_stream(f, 1 << 20, NULL) : NULL;
    if (f)
        fclose(f);
    free(w);
    return text;
#else
    return file_read_all(path, 1 << 20, NULL);
#endif
}

#ifdef _WIN32
static DWORD WINAPI close_later(void *h)
{
    Sleep(100);
    CloseHandle(h);
    return 0;
}

/* Windows refuses to replace a file another program holds open: for a
 * moment (a virus scanner's look) file_write_atomic waits it out. */
static int replace_while_open(const char *path)
{
    wchar_t *w = wstr_from_utf8(path);
    HANDLE h = w ? CreateFileW(w, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL)
                 : INVALID_HANDLE_VALUE, t;
    int ok;
    free(w);
    if (h == INVALID_HANDLE_VALUE || !(t = CreateThread(NULL, 0, close_later, h, 0, NULL)))
        return 0;
    ok = file_write_atomic(path, CONTENT, strlen(CONTENT), 0600) == 0;
    if (!ok)
        fprintf(stderr, "replace: %s\n", strerror(errno));
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
    return ok;
}
#endif

static void test_files(void)
{
    char dir[1200], path[1300], within[1200], moved[1300], *text, **names;
    size_t len = 0, count = 0;

    snprintf(dir, sizeof dir, "%s/中文目录/子目录", base);
    snprintf(path, sizeof path, "%s/证书.txt", dir);
    CHECK(file_mkdirs(dir) == 0);
    CHECK(file_mkdirs(dir) == 0); /* an existing one is fine */
    CHECK(file_exists(dir));
    CHECK(!file_exists(path));

    CHECK(file_write_atomic(path, "old", 3, 0600) == 0);
    CHECK(file_write_atomic(path, CONTENT, strlen(CONTENT), 0600) == 0); /* replaces it */
#ifdef _WIN32
    CHECK(replace_while_open(path));
#endif
    CHECK(file_exists(path));
    text = file_read_all(path, 1024, &len);
    CHECK_STR(text, CONTENT);
    CHECK(len == strlen(CONTENT));
    free(text);
    text = read_natively(path);
    CHECK_STR(text, CONTENT);
    free(text);

    snprintf(within, sizeof within, "%s/中文目录", base);
    text = file_read_within(within, "/子目录/证书.txt", 1024, NULL);
    CHECK_STR(text, CONTENT);
    free(text);
    CHECK(file_read_within(within, "/子目录/证书.txt", 4, NULL) == NULL); /* over max */
    CHECK(file_read_within(within, "/子目录", 1024, NULL) == NULL);       /* a directory */

    snprintf(moved, sizeof moved, "%s/另一个.json", dir);
    CHECK(file_write_atomic(moved, "{}", 2, 0644) == 0);
    names = file_list(dir, ".txt", &count);
    CHECK(names && count == 1 && strcmp(names[0], "证书.txt") == 0);
    file_list_free(names);
    names = file_list(dir, "", &count);
    CHECK(names && count == 2 && strcmp(names[0], "另一个.json") == 0 && strcmp(names[1], "证书.txt") == 0);
    file_list_free(names);

    CHECK(file_remove(path) == 0);
    CHECK(!file_exists(path));
    CHECK(file_read_all(path, 1024, NULL) == NULL);
}

/* The default state directory under a Chinese user directory, and the
 * local CA's identity written there, read back and reused. */
static void test_state_dir(void)
{
    struct agent_config cfg;
    char home[1200], want[1300], err[512], crt[1400], *text, *conf;
    enum localca_result res;
    mbedtls_x509_crt c;

    snprintf(home, sizeof home, "%s/用户 张三", base);
    CHECK(tmp_setenv(STATE_VAR, home) == 0);
    CHECK(tmp_setenv(CONFIG_VAR, home) == 0);
    snprintf(want, sizeof want, "%s" SEP "ukey-agent", home);
    conf = dirs_get(DIRS_USER_CONFIG);
    CHECK(conf && strcmp(conf, want) == 0);
    free(conf);
    config_defaults(&cfg);
    CHECK(config_resolve_state_dir(&cfg, err, sizeof err) == 0);
    CHECK(cfg.state_dir && strcmp(cfg.state_dir, want) == 0);

    CHECK(localca_ensure(cfg.state_dir, time(NULL), &res, err, sizeof err) == 0);
    CHECK(res == LOCALCA_CREATED);
    CHECK(localca_ensure(cfg.state_dir, time(NULL), &res, err, sizeof err) == 0);
    CHECK(res == LOCALCA_REUSED); /* server.key and the certificates were read back */
    if (res != LOCALCA_REUSED)
        fprintf(stderr, "localca: %s\n", err);

    snprintf(crt, sizeof crt, "%s/%s", cfg.state_dir, LOCALCA_CERT_FILE);
    mbedtls_x509_crt_init(&c);
    CHECK(compat_x509_crt_parse_file(&c, crt) == 0);
    mbedtls_x509_crt_free(&c);
    text = read_natively(crt);
    CHECK(text && strstr(text, "-----BEGIN CERTIFICATE-----"));
    free(text);
    config_free(&cfg);
}

static void test_timegm(void)
{
    static const struct {
        int y, mon, d, h, min, s;
        long long want;
    } cases[] = {
        {1970, 1, 1, 0, 0, 0, 0},
        {2000, 3, 1, 0, 0, 0, 951868800},
        {2024, 2, 29, 12, 0, 0, 1709208000},
        {2038, 1, 19, 3, 14, 8, 2147483648LL},
        {1950, 1, 1, 0, 0, 0, -631152000},
        {9999, 12, 31, 23, 59, 59, 253402300799LL}, /* RFC 5280's "no expiry" */
        {2023, 13, 1, 0, 0, 0, 1704067200},         /* month 13: January 2024 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tm tm = {.tm_year = cases[i].y - 1900, .tm_mon = cases[i].mon - 1, .tm_mday = cases[i].d,
                        .tm_hour = cases[i].h, .tm_min = cases[i].min, .tm_sec = cases[i].s};
        CHECK((long long)clock_timegm(&tm) == cases[i].want);
    }
}

int main(void)
{
    if (tmp_dir(base, sizeof base, "ukey-test-paths") != 0 || rng_init() != 0) {
        fprintf(stderr, "cannot make a temporary directory or start the RNG\n");
        return 1;
    }
    test_files();
    test_state_dir();
    test_timegm();
    CHECK(tmp_remove_tree(base) == 0);
    return check_done();
}
