/* Bounded HTTP(S) fetches through libcurl; see fetch.h. */
#include "x509/fetch.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
        *(time_t *)arg = curl_getdate(value, NULL);
    }
    return len;
}

/* Loopback never goes through a proxy, whatever the environment says. */
static void set_no_proxy(CURL *curl, char *buf, size_t cap)
{
    const char *env = getenv("no_proxy") ? getenv("no_proxy") : getenv("NO_PROXY");
    snprintf(buf, cap, "%s%slocalhost,127.0.0.1,::1", env && *env ? env : "", env && *env ? "," : "");
    curl_easy_setopt(curl, CURLOPT_NOPROXY, buf);
}

int x509_fetch(const struct x509_fetch_req *req, struct x509_fetch_res *res, char *err, size_t errlen)
{
    CURL *curl = curl_easy_init();
    struct grow g = {NULL, 0, 0};
    struct curl_slist *headers = NULL;
    char no_proxy[1024];
    long timeout = req->timeout_s > 0 ? req->timeout_s : X509_FETCH_TIMEOUT_S;
    CURLcode rc;
    memset(res, 0, sizeof *res);
    if (!curl) {
        snprintf(err, errlen, "cannot start libcurl");
        return -1;
    }
    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &g);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, timeout < 5 ? timeout : 5L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_date);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &res->date);
    set_no_proxy(curl, no_proxy, sizeof no_proxy);
    if (req->post) {
        headers = curl_slist_append(NULL, req->content_type ? req->content_type : "Content-Type: application/octet-stream");
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, (const char *)req->post);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)req->post_len);
    }
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->http_code);
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    if (res->date < 0)
        res->date = 0;
    if (rc != CURLE_OK) {
        if (g.too_big)
            snprintf(err, errlen, "%.160s: the answer is larger than %u MiB", req->url, X509_FETCH_MAX >> 20);
        else
            snprintf(err, errlen, "%.160s: %s", req->url, curl_easy_strerror(rc));
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
