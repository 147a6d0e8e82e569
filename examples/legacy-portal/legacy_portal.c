/*
 * ukey-legacy-portal: the back end of a portal written for the old
 * SafeEngine / SOF plug-ins, unchanged except that its pages include the
 * agent's facades (issue 15; docs/MIGRATION.md):
 *
 *   GET  /...     its pages (www/); in a .html page {{RANDOM}} becomes a
 *                 fresh single-use server random (Base64 of 32 bytes) kept
 *                 in the session (cookie "portal_session": HttpOnly,
 *                 SameSite=Strict) and {{AGENT}} the agent's URL
 *   GET  /sdk/... the portal's copy of the SDK and its facades (webroot/sdk/)
 *   POST /login   form fields UserCert (Base64 DER) and UserSignedData
 *                 (Base64 raw signature over the random's text): checked
 *                 with ukey_verify_signature (chain to --ca-file, validity,
 *                 CRL, SM3withSM2 / SHA256withRSA / ECDSA from the key)
 *
 * Usage: ukey-legacy-portal --ca-file CA.pem... [--crl CRL... | --crl-fetch]
 *                           [--port 8090] [--www DIR] [--agent https://127.0.0.1:27443]
 * Plain HTTP on 127.0.0.1 only: a demo.
 */
#include <ukey/verify.h>

#include "../common/webapp.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct webapp_options portal = {
    .www = UKEY_PORTAL_WWW, .sdk = UKEY_PORTAL_SDK, .agent = "https://127.0.0.1:27443", .port = 8090,
};

static const char html[] = "text/html; charset=utf-8";

/* A short HTML page (zh-CN first, then en) with `status`. */
static enum MHD_Result send_page(struct MHD_Connection *c, unsigned status, const char *title, const char *zh,
                                 const char *en, const char *detail)
{
    char *page = NULL;
    int n = asprintf(&page,
                     "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>%s</title></head>"
                     "<body><h1>%s</h1><p id=\"result\">%s</p><p lang=\"en\">%s</p><p><a href=\"/\">返回 / back</a>"
                     "</p></body></html>",
                     title, zh, detail, en);
    if (n < 0)
        return MHD_NO;
    return webapp_send(c, status, page, (size_t)n, html, "default-src 'none'", NULL);
}

/* `text` with every `key` replaced by `value` (malloc'd), or NULL. */
static char *replace(const char *text, const char *key, const char *value)
{
    size_t kl = strlen(key), vl = strlen(value), n = 0, len = strlen(text);
    char *out, *o;
    for (const char *p = text; (p = strstr(p, key)); p += kl)
        n++;
    if (!(out = o = malloc(len + n * vl + 1)))
        return NULL;
    for (const char *p = text, *q; ; p = q + kl) {
        if (!(q = strstr(p, key))) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, value, vl);
        o += vl;
    }
    return out;
}

static enum MHD_Result send_file(struct MHD_Connection *c, const char *url)
{
    char path[4200], csp[1024], challenge[64], cookie[65] = "", *data, *with_random, *page;
    const char *type;
    size_t len;

    if (webapp_static_path(url, portal.www, portal.sdk, path, sizeof path, &type) != 0 ||
        !(data = webapp_read_file(path, &len)))
        return send_page(c, MHD_HTTP_NOT_FOUND, "404", "没有这个页面", "no such page", url);
    if (strcmp(type, html) == 0 && strstr(data, "{{RANDOM}}")) {
        webapp_new_challenge(c, challenge, cookie);
        with_random = replace(data, "{{RANDOM}}", challenge);
        free(data);
        if (!with_random)
            return MHD_NO;
        data = with_random;
    }
    if (strcmp(type, html) == 0) {
        page = replace(data, "{{AGENT}}", portal.agent);
        free(data);
        if (!(data = page))
            return MHD_NO;
    }
    /* Old pages have inline scripts and styles; they talk to the agent only. */
    snprintf(csp, sizeof csp,
             "default-src 'self'; script-src 'self' 'unsafe-inline' %s; connect-src 'self' %s; "
             "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
             "form-action 'self'",
             portal.agent, portal.agent);
    return webapp_send(c, MHD_HTTP_OK, data, strlen(data), type, csp, cookie);
}

/* Form field `name` of an x-www-form-urlencoded body, decoded in place
 * into out (cap bytes): 0, or -1 (missing, too long, bad escape). */
static int form_field(const char *body, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name), o = 0;
    const char *p = body;
    while (p && *p && !(strncmp(p, name, nl) == 0 && p[nl] == '='))
        p = (p = strchr(p, '&')) ? p + 1 : NULL;
    if (!p || !*p)
        return -1;
    for (p += nl + 1; *p && *p != '&'; p++) {
        unsigned v;
        if (o + 1 >= cap)
            return -1;
        if (*p == '+') {
            out[o++] = ' ';
        } else if (*p == '%') {
            if (sscanf(p + 1, "%2x", &v) != 1 || !p[1] || !p[2])
                return -1;
            out[o++] = (char)v;
            p += 2;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return 0;
}

/* Base64 text -> bytes (out has room for 3/4 of its length): the length, or -1. */
static int b64_decode(const char *in, unsigned char *out)
{
    size_t len = strlen(in);
    int n;
    if (len == 0 || len % 4 || (n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len)) < 0)
        return -1;
    return n - (in[len - 1] == '=') - (in[len - 2] == '=');
}

/* The holder's CN from a subject DN "CN=..., O=..." (or the whole DN). */
static void common_name(const char *subject, char *cn, size_t cap)
{
    const char *p = strstr(subject, "CN=");
    size_t n;
    p = p ? p + 3 : subject;
    n = strcspn(p, ",");
    snprintf(cn, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
}

static enum MHD_Result login(struct MHD_Connection *c, const char *body, size_t len)
{
    char *cert = malloc(len + 1), *sig_b64 = malloc(len + 1), challenge[64], cn[256];
    unsigned char *sig = malloc(len + 1);
    struct ukey_verify_info info;
    ukey_verify_result r = UKEY_VERIFY_FORMAT;
    enum MHD_Result ret;
    int sig_len = -1;

    if (!cert || !sig_b64 || !sig) {
        ret = MHD_NO;
        goto out;
    }
    if (form_field(body, "UserCert", cert, len + 1) != 0 || form_field(body, "UserSignedData", sig_b64, len + 1) != 0 ||
        (sig_len = b64_decode(sig_b64, sig)) <= 0) {
        ret = send_page(c, MHD_HTTP_BAD_REQUEST, "登录失败", "登录失败：表单缺少 UserCert 或 UserSignedData",
                        "Login failed: the form lacks UserCert or UserSignedData (Base64)", "FORMAT");
        goto out;
    }
    /* The random is used once, whatever the outcome. */
    if (webapp_take_challenge(c, challenge) != 0) {
        ret = send_page(c, MHD_HTTP_FORBIDDEN, "登录失败", "登录失败：随机数已用过或已过期，请刷新页面",
                        "Login failed: no unused server random in this session; reload the page", "NO_CHALLENGE");
        goto out;
    }
    r = ukey_verify_signature(portal.verifier, cert, strlen(cert), (const unsigned char *)challenge,
                              strlen(challenge), sig, (size_t)sig_len, &info);
    if (r != UKEY_VERIFY_OK) {
        char detail[400];
        fprintf(stderr, "ukey-legacy-portal: login refused: %s (%s) for \"%s\" serial %s\n", ukey_verify_name(r),
                info.detail, info.subject, info.serial);
        snprintf(detail, sizeof detail, "%s: %s", ukey_verify_name(r), info.detail);
        ret = send_page(c, MHD_HTTP_FORBIDDEN, "登录失败", "登录失败：签名或证书验证未通过",
                        "Login failed: the signature or the certificate did not verify", detail);
        goto out;
    }
    common_name(info.subject, cn, sizeof cn);
    fprintf(stderr, "ukey-legacy-portal: logged in: %s (serial %s, %s)\n", info.subject, info.serial, info.algorithm);
    ret = send_page(c, MHD_HTTP_OK, "登录成功", "登录成功", "Logged in", cn);
out:
    free(cert);
    free(sig_b64);
    free(sig);
    return ret;
}

static enum MHD_Result on_request(struct MHD_Connection *c, const char *url, const char *method, const char *body,
                                  size_t len, int too_big)
{
    if (strcmp(method, "POST") == 0 && strcmp(url, "/login") == 0) {
        const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        if (too_big)
            return send_page(c, MHD_HTTP_CONTENT_TOO_LARGE, "413", "请求过大", "the body is too large", "");
        if (!type || strncmp(type, "application/x-www-form-urlencoded", 33) != 0)
            return send_page(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "415", "请以表单提交",
                             "send an x-www-form-urlencoded form", "");
        return login(c, body, len);
    }
    if (strcmp(method, "GET") != 0)
        return send_page(c, MHD_HTTP_METHOD_NOT_ALLOWED, "405", "不支持的方法", "GET, or POST /login", method);
    return send_file(c, url);
}

int main(int argc, char **argv)
{
    static const char usage[] =
        "Usage: ukey-legacy-portal --ca-file CA.pem... [--crl CRL... | --crl-fetch] [--port 8090]\n"
        "                          [--www DIR] [--agent https://127.0.0.1:27443]\n";
    char about[512];
    int o = webapp_options("ukey-legacy-portal", usage, argc, argv, 0, &portal);

    if (o >= 0) {
        ukey_verifier_free(portal.verifier);
        return o;
    }
    snprintf(about, sizeof about, "agent %s", portal.agent);
    o = webapp_run("ukey-legacy-portal", portal.port, on_request, about);
    ukey_verifier_free(portal.verifier);
    return o;
}
