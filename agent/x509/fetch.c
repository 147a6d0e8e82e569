/*
 * Bounded HTTP(S) fetches through libcurl; see fetch.h.
 *
 * libcurl is loaded at the first fetch, not when the program starts: its
 * dependency tree (a TLS library of its own, Kerberos, LDAP, SSH, RTMP ...)
 * cost about 20 ms of every start-up and memory for the whole life of an
 * agent that fetches only when someone asks for diagnostics or a
 * revocation check. The .deb still depends on libcurl4 (CMakeLists.txt:
 * CPACK_DEBIAN_PACKAGE_DEPENDS, which dpkg-shlibdeps cannot see through a
 * dlopen). A failed load is tried again at the next fetch, so installing
 * libcurl needs no restart.
 */
#include "x509/fetch.h"

#include "util/dynlib.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* libcurl4's library (7.85 or later: CURLOPT_PROTOCOLS_STR). */
#define CURL_LIBRARY "libcurl.so.4"

/* The few calls fetches make, from the loaded library. */
static struct {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *curl);
    CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *curl);
    const char *(*easy_strerror)(CURLcode code);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
    void (*slist_free_all)(struct curl_slist *list);
    time_t (*getdate)(const char *s, const time_t *unused);
} lib;
static int lib_ready;
static pthread_mutex_t lib_lock = PTHREAD_MUTEX_INITIALIZER;

#define FN(x) {"curl_" #x, (void **)&lib.x}

/* Loads libcurl, once it works. Returns 0, or -1 with the reason in `err`. */
static int load_locked(char *err, size_t errlen)
{
    const struct { const char *name; void **slot; } fns[] = {
        FN(global_init), FN(easy_init), FN(easy_setopt), FN(easy_perform), FN(easy_getinfo),
        FN(easy_cleanup), FN(easy_strerror), FN(slist_append), FN(slist_free_all), FN(getdate),
    };
    struct dynlib *dl;
    char why[256];

    if (lib_ready)
        return 0;
    if (!(dl = dynlib_open(CURL_LIBRARY, why, sizeof why))) {
        snprintf(err, errlen, "fetches need libcurl (the libcurl4 package), which cannot be loaded: %s", why);
        return -1;
    }
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        if (!(*fns[i].slot = dynlib_sym(dl, fns[i].name))) {
            snprintf(err, errlen, "%s lacks %s", CURL_LIBRARY, fns[i].name);
            return -1;
        }
    }
    /* Once, before any handle, and under lib_lock: curl_global_init is not
     * thread-safe in every libcurl build. */
    if (lib.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "libcurl failed to initialise");
        return -1;
    }
    lib_ready = 1;
    return 0;
}

#undef FN

static int load_curl(char *err, size_t errlen)
{
    int rc;
    pthread_mutex_lock(&lib_lock);
    rc = load_locked(err, errlen);
    pthread_mutex_unlock(&lib_lock);
    return rc;
}

struct grow {
    unsigned char *data;
    size_t len;
    int too_big;
};

static size_t collect(char *ptr, size_t size, size_t n, void *arg)
{
    struct grow *g = arg;
    size_t add = size * n;
    unsigned char *bigger;
    if (g->len + add > X509_FETCH_MAX) {
        g->too_big = 1;
        return 0;
    }
    if (!(bigger = realloc(g->data, g->len + add + 1)))
        return 0;
    g->data = bigger;
    memcpy(g->data + g->len, ptr, add);
    g->len += add;
    g->data[g->len] = '\0';
    return add;
}

/* Picks the Date header out of the response headers. */
static size_t header_date(char *line, size_t size, size_t n, void *arg)
{
    char value[128];
    size_t len = size * n;
    if (len > 5 && len < sizeof value + 5 && strncasecmp(line, "Date:", 5) == 0) {
        memcpy(value, line + 5, len - 5);
        value[len - 5] = '\0';
        *(time_t *)arg = lib.getdate(value, NULL);
    }
    return len;
}

/* Loopback never goes through a proxy, whatever the environment says. */
static void set_no_proxy(CURL *curl, char *buf, size_t cap)
{
    const char *env = getenv("no_proxy") ? getenv("no_proxy") : getenv("NO_PROXY");
    snprintf(buf, cap, "%s%slocalhost,127.0.0.1,::1", env && *env ? env : "", env && *env ? "," : "");
    lib.easy_setopt(curl, CURLOPT_NOPROXY, buf);
}

int x509_fetch(const struct x509_fetch_req *req, struct x509_fetch_res *res, char *err, size_t errlen)
{
    CURL *curl;
    struct grow g = {NULL, 0, 0};
    struct curl_slist *headers = NULL;
    char no_proxy[1024];
    long timeout = req->timeout_s > 0 ? req->timeout_s : X509_FETCH_TIMEOUT_S;
    CURLcode rc;
    memset(res, 0, sizeof *res);
    if (load_curl(err, errlen) != 0)
        return -1;
    if (!(curl = lib.easy_init())) {
        snprintf(err, errlen, "cannot start libcurl");
        return -1;
    }
    /* http and https only, redirects included; a libcurl too old to be told so is not used. */
    if (lib.easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        lib.easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK) {
        lib.easy_cleanup(curl);
        snprintf(err, errlen, "%s is too old (7.85 or later is needed)", CURL_LIBRARY);
        return -1;
    }
    lib.easy_setopt(curl, CURLOPT_URL, req->url);
    lib.easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    lib.easy_setopt(curl, CURLOPT_MAXREDIRS, 3L);
    lib.easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    lib.easy_setopt(curl, CURLOPT_WRITEDATA, &g);
    lib.easy_setopt(curl, CURLOPT_TIMEOUT, timeout);
    lib.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, timeout < 5 ? timeout : 5L);
    lib.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    /* An answer that says it is too large is refused before its body. */
    lib.easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)X509_FETCH_MAX);
    lib.easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_date);
    lib.easy_setopt(curl, CURLOPT_HEADERDATA, &res->date);
    set_no_proxy(curl, no_proxy, sizeof no_proxy);
    if (req->post) {
        headers = lib.slist_append(NULL, req->content_type ? req->content_type : "Content-Type: application/octet-stream");
        lib.easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        lib.easy_setopt(curl, CURLOPT_POSTFIELDS, (const char *)req->post);
        lib.easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)req->post_len);
    }
    rc = lib.easy_perform(curl);
    lib.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->http_code);
    lib.easy_cleanup(curl);
    lib.slist_free_all(headers);
    if (res->date < 0)
        res->date = 0;
    if (rc != CURLE_OK) {
        if (g.too_big || rc == CURLE_FILESIZE_EXCEEDED)
            snprintf(err, errlen, "%.160s: the answer is larger than %u MiB", req->url, X509_FETCH_MAX >> 20);
        else
            snprintf(err, errlen, "%.160s: %s", req->url, lib.easy_strerror(rc));
        free(g.data);
        return -1;
    }
    if (!g.data && !(g.data = calloc(1, 1))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    res->body = g.data;
    res->len = g.len;
    return 0;
}
