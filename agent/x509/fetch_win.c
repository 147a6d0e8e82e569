/*
 * Bounded HTTP(S) fetches through WinHTTP (Windows); see fetch.h.
 *
 * Why WinHTTP rather than libcurl: it is part of Windows, and it reads the
 * proxy the way the user's other programs do: the Internet Options
 * settings (a named proxy and its bypass list, a PAC file's URL, or
 * automatic detection, WPAD), which enterprise networks set by policy and
 * libcurl ignores. Certificates are checked by the system (Schannel and
 * the Windows root store) and no check is ever turned off here.
 *
 * Each fetch runs on its own session, synchronously. WinHTTP follows up
 * to 3 redirects itself (http and https only, either way, as fetch.c);
 * the proxy chosen for the first URL serves the redirects too. (The proxy
 * is the session's, not set on the request: Wine 8 ignores a request's.)
 */
#include "x509/fetch.h"

#include "util/clock.h"
#include "util/winerr.h"
#include "util/wstr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <winhttp.h>

#define FETCH_CONNECT_MAX_S 5
#define WIDE_(s) L##s
#define WIDE(s) WIDE_(s)
#define FETCH_CHUNK 16384

/* Seconds between 1601-01-01 (FILETIME) and 1970-01-01. */
#define FILETIME_UNIX_EPOCH_S 11644473600LL

struct fetch {
    HINTERNET session, connect, request;
    WINHTTP_PROXY_INFO proxy;   /* GlobalAlloc'd strings, from WinHTTP */
    long long until_ms;         /* the whole fetch's deadline (clock_ms) */
};

/* WinHTTP's own codes (its DLL carries their texts, which Wine's lacks). */
static const struct {
    DWORD code;
    const char *text;
} winhttp_errors[] = {
    {ERROR_WINHTTP_TIMEOUT, "timed out"},
    {ERROR_WINHTTP_NAME_NOT_RESOLVED, "the server's name cannot be resolved"},
    {ERROR_WINHTTP_CANNOT_CONNECT, "cannot connect to the server"},
    {ERROR_WINHTTP_CONNECTION_ERROR, "the connection was broken"},
    {ERROR_WINHTTP_INVALID_SERVER_RESPONSE, "the server's answer is not HTTP"},
    {ERROR_WINHTTP_SECURE_FAILURE, "the server's TLS certificate was not accepted"},
    {ERROR_WINHTTP_CLIENT_AUTH_CERT_NEEDED, "the server asks for a client certificate"},
    {ERROR_WINHTTP_REDIRECT_FAILED, "too many redirects, or one to a scheme other than http/https"},
};

/* Why a WinHTTP call failed, in words. */
static void fail(const char *url, const char *what, DWORD code, char *err, size_t errlen)
{
    char text[200];
    size_t i = 0;
    while (i < sizeof winhttp_errors / sizeof winhttp_errors[0] && winhttp_errors[i].code != code)
        i++;
    if (i < sizeof winhttp_errors / sizeof winhttp_errors[0])
        snprintf(text, sizeof text, "%s (error %lu)", winhttp_errors[i].text, (unsigned long)code);
    else
        winerr_text(code, L"winhttp.dll", text, sizeof text);
    snprintf(err, errlen, "%.160s: %s: %s", url, what, text);
}

/* Loopback never goes through a proxy, whatever the settings say. */
static int is_loopback(const wchar_t *host)
{
    return _wcsicmp(host, L"localhost") == 0 || wcscmp(host, L"127.0.0.1") == 0 || wcscmp(host, L"::1") == 0 ||
           wcscmp(host, L"[::1]") == 0;
}

/*
 * The user's proxy for `url` into f->proxy (left at "no proxy" when there
 * is none): a PAC file (named, or found by WPAD when automatic detection
 * is on) decides first; when it cannot be had, the named proxy, if any.
 * The PAC file is fetched and run on a session of its own (WinHTTP needs
 * one); the fetch's session is then opened with the proxy chosen, which
 * also serves its redirects.
 */
static void choose_proxy(struct fetch *f, const wchar_t *url)
{
    WINHTTP_CURRENT_USER_IE_PROXY_CONFIG ie;
    int decided = 0;
    memset(&ie, 0, sizeof ie);
    if (!WinHttpGetIEProxyConfigForCurrentUser(&ie))
        return; /* no settings: direct */
    if (ie.fAutoDetect || ie.lpszAutoConfigUrl) {
        WINHTTP_AUTOPROXY_OPTIONS ap;
        HINTERNET resolver = WinHttpOpen(L"ukey-agent/" WIDE(UKEY_VERSION), WINHTTP_ACCESS_TYPE_NO_PROXY,
                                         WINHTTP_NO_PROXY_NAME, WINHTTP_NO_PROXY_BYPASS, 0);
        memset(&ap, 0, sizeof ap);
        if (ie.lpszAutoConfigUrl) {
            ap.dwFlags = WINHTTP_AUTOPROXY_CONFIG_URL;
            ap.lpszAutoConfigUrl = ie.lpszAutoConfigUrl;
        }
        if (ie.fAutoDetect) {
            ap.dwFlags |= WINHTTP_AUTOPROXY_AUTO_DETECT;
            ap.dwAutoDetectFlags = WINHTTP_AUTO_DETECT_TYPE_DHCP | WINHTTP_AUTO_DETECT_TYPE_DNS_A;
        }
        ap.fAutoLogonIfChallenged = TRUE;
        decided = resolver && WinHttpGetProxyForUrl(resolver, url, &ap, &f->proxy);
        if (!decided)
            memset(&f->proxy, 0, sizeof f->proxy);
        if (resolver)
            WinHttpCloseHandle(resolver);
    }
    if (!decided && ie.lpszProxy) {
        /* Handed over: freed with f->proxy (GlobalFree). */
        f->proxy.dwAccessType = WINHTTP_ACCESS_TYPE_NAMED_PROXY;
        f->proxy.lpszProxy = ie.lpszProxy;
        f->proxy.lpszProxyBypass = ie.lpszProxyBypass;
        ie.lpszProxy = ie.lpszProxyBypass = NULL;
    }
    GlobalFree(ie.lpszAutoConfigUrl);
    GlobalFree(ie.lpszProxy);
    GlobalFree(ie.lpszProxyBypass);
}

/* Milliseconds left before the deadline (at least 1). */
static DWORD left_ms(const struct fetch *f)
{
    long long left = f->until_ms - clock_ms();
    return left > 0 ? (DWORD)left : 1;
}

/* The response's Date header as Unix time, 0 if none or malformed. */
static time_t response_date(HINTERNET request)
{
    SYSTEMTIME st;
    FILETIME ft;
    DWORD size = sizeof st;
    ULARGE_INTEGER u;
    if (!WinHttpQueryHeaders(request, WINHTTP_QUERY_DATE | WINHTTP_QUERY_FLAG_SYSTEMTIME, WINHTTP_HEADER_NAME_BY_INDEX,
                             &st, &size, WINHTTP_NO_HEADER_INDEX) ||
        !SystemTimeToFileTime(&st, &ft))
        return 0;
    u.LowPart = ft.dwLowDateTime;
    u.HighPart = ft.dwHighDateTime;
    if (u.QuadPart / 10000000ULL < (ULONGLONG)FILETIME_UNIX_EPOCH_S)
        return 0;
    return (time_t)(u.QuadPart / 10000000ULL - (ULONGLONG)FILETIME_UNIX_EPOCH_S);
}

/* The error for an answer over X509_FETCH_MAX, said or found. */
static void say_too_large(const char *url, char *err, size_t errlen)
{
    snprintf(err, errlen, "%.160s: the answer is larger than %u MiB", url, X509_FETCH_MAX >> 20);
}

/* Reads the body into res (at most X509_FETCH_MAX bytes). 0, or -1 with err. */
static int read_body(struct fetch *f, const char *url, struct x509_fetch_res *res, char *err, size_t errlen)
{
    unsigned char *data;
    size_t len = 0;
    wchar_t declared[32];
    DWORD size = sizeof declared;
    /* An answer that says it is too large is refused before its body. */
    if (WinHttpQueryHeaders(f->request, WINHTTP_QUERY_CONTENT_LENGTH, WINHTTP_HEADER_NAME_BY_INDEX, declared, &size,
                            WINHTTP_NO_HEADER_INDEX) &&
        wcstoull(declared, NULL, 10) > X509_FETCH_MAX) {
        say_too_large(url, err, errlen);
        return -1;
    }
    if (!(data = calloc(1, 1))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (;;) {
        DWORD got = 0, timeout = left_ms(f);
        unsigned char *bigger;
        WinHttpSetOption(f->request, WINHTTP_OPTION_RECEIVE_TIMEOUT, &timeout, sizeof timeout);
        if (!(bigger = realloc(data, len + FETCH_CHUNK + 1))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        data = bigger;
        if (!WinHttpReadData(f->request, data + len, FETCH_CHUNK, &got)) {
            fail(url, "reading the answer", GetLastError(), err, errlen);
            goto fail;
        }
        if (got == 0)
            break;
        len += got;
        data[len] = '\0';
        if (len > X509_FETCH_MAX) {
            say_too_large(url, err, errlen);
            goto fail;
        }
        if (clock_ms() >= f->until_ms) {
            fail(url, "reading the answer", ERROR_WINHTTP_TIMEOUT, err, errlen);
            goto fail;
        }
    }
    res->body = data;
    res->len = len;
    return 0;
fail:
    free(data);
    return -1;
}

int x509_fetch(const struct x509_fetch_req *req, struct x509_fetch_res *res, char *err, size_t errlen)
{
    struct fetch f = {0};
    URL_COMPONENTS uc;
    long timeout = req->timeout_s > 0 ? req->timeout_s : X509_FETCH_TIMEOUT_S;
    int connect_ms = (int)(timeout < FETCH_CONNECT_MAX_S ? timeout : FETCH_CONNECT_MAX_S) * 1000;
    wchar_t *url = wstr_from_utf8(req->url), *host = NULL, *path = NULL, *headers = NULL;
    DWORD status = 0, size = sizeof status, policy = WINHTTP_OPTION_REDIRECT_POLICY_ALWAYS, redirects = 3;
    int rc = -1;

    memset(res, 0, sizeof *res);
    f.until_ms = clock_ms() + timeout * 1000;
    memset(&uc, 0, sizeof uc);
    uc.dwStructSize = sizeof uc;
    uc.dwHostNameLength = uc.dwUrlPathLength = uc.dwExtraInfoLength = (DWORD)-1;
    if (!url || !WinHttpCrackUrl(url, 0, 0, &uc) ||
        (uc.nScheme != INTERNET_SCHEME_HTTP && uc.nScheme != INTERNET_SCHEME_HTTPS) || uc.dwHostNameLength == 0) {
        snprintf(err, errlen, "%.160s: not an http:// or https:// URL", req->url);
        goto out;
    }
    /* The host alone; the path with its query, without a #fragment. */
    host = malloc((uc.dwHostNameLength + 1) * sizeof *host);
    path = _wcsdup(uc.dwUrlPathLength ? uc.lpszUrlPath : L"/");
    if (!host || !path) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    memcpy(host, uc.lpszHostName, uc.dwHostNameLength * sizeof *host);
    host[uc.dwHostNameLength] = L'\0';
    if (wcschr(path, L'#'))
        *wcschr(path, L'#') = L'\0';

    if (!is_loopback(host))
        choose_proxy(&f, url);
    if (f.proxy.lpszProxy)
        f.session = WinHttpOpen(L"ukey-agent/" WIDE(UKEY_VERSION), WINHTTP_ACCESS_TYPE_NAMED_PROXY, f.proxy.lpszProxy,
                                f.proxy.lpszProxyBypass ? f.proxy.lpszProxyBypass : WINHTTP_NO_PROXY_BYPASS, 0);
    else
        f.session = WinHttpOpen(L"ukey-agent/" WIDE(UKEY_VERSION), WINHTTP_ACCESS_TYPE_NO_PROXY,
                                WINHTTP_NO_PROXY_NAME, WINHTTP_NO_PROXY_BYPASS, 0);
    if (!f.session) {
        fail(req->url, "starting WinHTTP", GetLastError(), err, errlen);
        goto out;
    }
    WinHttpSetTimeouts(f.session, (int)left_ms(&f), connect_ms, (int)left_ms(&f), (int)left_ms(&f));
    if (!(f.connect = WinHttpConnect(f.session, host, uc.nPort, 0)) ||
        !(f.request = WinHttpOpenRequest(f.connect, req->post ? L"POST" : L"GET", path, NULL, WINHTTP_NO_REFERER,
                                         WINHTTP_DEFAULT_ACCEPT_TYPES,
                                         uc.nScheme == INTERNET_SCHEME_HTTPS ? WINHTTP_FLAG_SECURE : 0))) {
        fail(req->url, "opening the request", GetLastError(), err, errlen);
        goto out;
    }
    WinHttpSetOption(f.request, WINHTTP_OPTION_REDIRECT_POLICY, &policy, sizeof policy);
    WinHttpSetOption(f.request, WINHTTP_OPTION_MAX_HTTP_AUTOMATIC_REDIRECTS, &redirects, sizeof redirects);
    if (req->post && !(headers = wstr_from_utf8(req->content_type ? req->content_type
                                                                  : "Content-Type: application/octet-stream"))) {
        snprintf(err, errlen, "%.160s: the content type is not valid UTF-8", req->url);
        goto out;
    }
    if (req->post_len > X509_FETCH_MAX) {
        snprintf(err, errlen, "%.160s: the request is larger than %u MiB", req->url, X509_FETCH_MAX >> 20);
        goto out;
    }
    if (!WinHttpSendRequest(f.request, headers ? headers : WINHTTP_NO_ADDITIONAL_HEADERS, headers ? (DWORD)-1L : 0,
                            (void *)req->post, (DWORD)req->post_len, (DWORD)req->post_len, 0)) {
        fail(req->url, "sending the request", GetLastError(), err, errlen);
        goto out;
    }
    {
        DWORD t = left_ms(&f);
        WinHttpSetOption(f.request, WINHTTP_OPTION_RECEIVE_RESPONSE_TIMEOUT, &t, sizeof t);
    }
    if (!WinHttpReceiveResponse(f.request, NULL)) {
        fail(req->url, "waiting for the answer", GetLastError(), err, errlen);
        goto out;
    }
    if (WinHttpQueryHeaders(f.request, WINHTTP_QUERY_STATUS_CODE | WINHTTP_QUERY_FLAG_NUMBER,
                            WINHTTP_HEADER_NAME_BY_INDEX, &status, &size, WINHTTP_NO_HEADER_INDEX))
        res->http_code = (long)status;
    res->date = response_date(f.request);
    rc = read_body(&f, req->url, res, err, errlen);
out:
    if (rc != 0)
        memset(res, 0, sizeof *res);
    if (f.request)
        WinHttpCloseHandle(f.request);
    if (f.connect)
        WinHttpCloseHandle(f.connect);
    if (f.session)
        WinHttpCloseHandle(f.session);
    GlobalFree(f.proxy.lpszProxy);
    GlobalFree(f.proxy.lpszProxyBypass);
    free(headers);
    free(path);
    free(host);
    free(url);
    return rc;
}
