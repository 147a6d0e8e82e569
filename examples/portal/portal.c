/*
 * ukey-portal: the demo portal of docs/INTEGRATION.md, a complete example
 * of a portal's back end for UKey login through ukey-agent:
 *
 *   POST /api/challenge  a fresh 32-byte challenge, kept in the session
 *                        (cookie "portal_session": HttpOnly, SameSite=Strict)
 *   POST /api/login      {"token": <the Web eID token from the SDK>}: the
 *                        session's challenge is taken (single use) and the
 *                        token verified with libukeyverify: origin,
 *                        challenge, chain to the CA, validity, revocation
 *   GET  /api/me         who is logged in on this session
 *   POST /api/logout
 *   GET  /api/config     where the page finds the agent (and its SDK)
 *   GET  /sdk/...        the portal's copy of the JS SDK (webroot/sdk/)
 *   GET  /...            the login page (www/)
 *
 * Usage: ukey-portal --ca-file CA.pem... [--crl CRL... | --crl-fetch] [--port 8088]
 *                    [--origin http://127.0.0.1:8088] [--www DIR]
 *                    [--agent https://127.0.0.1:27443] [--probe http://127.0.0.1:27480]
 * Plain HTTP on 127.0.0.1 only: a demo. A real portal runs the same steps
 * behind its own HTTPS.
 */
#include <ukey/verify.h>

#include "../common/webapp.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct webapp_options portal = {
    .www = UKEY_PORTAL_WWW, .sdk = UKEY_PORTAL_SDK, .agent = "https://127.0.0.1:27443",
    .probe = "http://127.0.0.1:27480", .port = 8088,
};

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *body, const char *cookie)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return MHD_NO;
    return webapp_send(c, status, text, strlen(text), "application/json; charset=utf-8", NULL, cookie);
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code, const char *detail)
{
    return send_json(c, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "detail", detail), NULL);
}

static enum MHD_Result send_file(struct MHD_Connection *c, const char *url)
{
    char path[4200], csp[1024], *data;
    const char *type;
    size_t len;

    if (webapp_static_path(url, portal.www, portal.sdk, path, sizeof path, &type) != 0 ||
        !(data = webapp_read_file(path, &len)))
        return send_error(c, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no such page");
    /* The page may load the SDK from the agent and talk to it, nothing else. */
    snprintf(csp, sizeof csp,
             "default-src 'self'; script-src 'self' %s; connect-src 'self' %s %s; img-src 'self' data:; "
             "style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
             portal.agent, portal.agent, portal.probe);
    return webapp_send(c, MHD_HTTP_OK, data, len, type, csp, NULL);
}

static enum MHD_Result api_challenge(struct MHD_Connection *c)
{
    char challenge[64], cookie[65];
    webapp_new_challenge(c, challenge, cookie);
    return send_json(c, MHD_HTTP_OK, json_pack("{s:s}", "challenge", challenge), cookie);
}

static enum MHD_Result api_login(struct MHD_Connection *c, const char *body, size_t len)
{
    json_error_t jerr;
    json_t *req = json_loadb(body, len, 0, &jerr), *token = json_object_get(req, "token");
    char challenge[64], *token_text;
    struct ukey_verify_info info;
    ukey_verify_result r;
    struct session *s;

    if (!json_is_object(token)) {
        json_decref(req);
        return send_error(c, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST", "send {\"token\": <the Web eID token>}");
    }
    /* The challenge is used once, whatever the outcome. */
    if (webapp_take_challenge(c, challenge) != 0) {
        json_decref(req);
        return send_error(c, MHD_HTTP_UNAUTHORIZED, "NO_CHALLENGE", "no unused challenge in this session: start again");
    }
    token_text = json_dumps(token, JSON_COMPACT);
    json_decref(req);
    if (!token_text)
        return MHD_NO;
    r = ukey_verify_token(portal.verifier, token_text, strlen(token_text), portal.origin, challenge, &info);
    free(token_text);
    if (r != UKEY_VERIFY_OK) {
        fprintf(stderr, "ukey-portal: login refused: %s (%s)\n", ukey_verify_name(r), info.detail);
        return send_error(c, MHD_HTTP_UNAUTHORIZED, ukey_verify_name(r), info.detail);
    }
    webapp_lock();
    if ((s = webapp_find_session(c))) {
        snprintf(s->subject, sizeof s->subject, "%s", info.subject);
        snprintf(s->serial, sizeof s->serial, "%s", info.serial);
        snprintf(s->algorithm, sizeof s->algorithm, "%s", info.algorithm);
    }
    webapp_unlock();
    fprintf(stderr, "ukey-portal: logged in: %s (serial %s)\n", info.subject, info.serial);
    return send_json(c, MHD_HTTP_OK,
                     json_pack("{s:b, s:s, s:s, s:s}", "logged_in", 1, "subject", info.subject, "serial", info.serial,
                               "algorithm", info.algorithm),
                     NULL);
}

static enum MHD_Result api_me(struct MHD_Connection *c, int logout)
{
    struct session *s;
    json_t *out;
    webapp_lock();
    s = webapp_find_session(c);
    if (s && logout)
        memset(s, 0, sizeof *s);
    out = s && !logout && s->subject[0]
              ? json_pack("{s:b, s:s, s:s, s:s}", "logged_in", 1, "subject", s->subject, "serial", s->serial,
                          "algorithm", s->algorithm)
              : json_pack("{s:b}", "logged_in", 0);
    webapp_unlock();
    return send_json(c, MHD_HTTP_OK, out, NULL);
}

static enum MHD_Result on_request(struct MHD_Connection *c, const char *url, const char *method, const char *body,
                                  size_t len, int too_big)
{
    if (strcmp(method, "POST") == 0) {
        /* Cross-site requests never get here with a session: the cookie is
         * SameSite=Strict; and a POST must come from our own page. */
        const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
        const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        if (!origin || strcmp(origin, portal.origin) != 0)
            return send_error(c, MHD_HTTP_FORBIDDEN, "FORBIDDEN", "requests must come from the portal's own page");
        if (!type || strncmp(type, "application/json", 16) != 0)
            return send_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", "send JSON");
        if (too_big)
            return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "BODY_TOO_LARGE", "the body is too large");
        if (strcmp(url, "/api/challenge") == 0)
            return api_challenge(c);
        if (strcmp(url, "/api/login") == 0)
            return api_login(c, body, len);
        if (strcmp(url, "/api/logout") == 0)
            return api_me(c, 1);
        return send_error(c, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no such API");
    }
    if (strcmp(method, "GET") != 0)
        return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "GET or POST");
    if (strcmp(url, "/api/me") == 0)
        return api_me(c, 0);
    if (strcmp(url, "/api/config") == 0)
        return send_json(c, MHD_HTTP_OK, json_pack("{s:s, s:s}", "agent", portal.agent, "probe", portal.probe), NULL);
    return send_file(c, url);
}

int main(int argc, char **argv)
{
    static const char usage[] =
        "Usage: ukey-portal --ca-file CA.pem... [--crl CRL... | --crl-fetch] [--port 8088]\n"
        "                   [--origin http://127.0.0.1:8088] [--www DIR]\n"
        "                   [--agent https://127.0.0.1:27443] [--probe http://127.0.0.1:27480]\n";
    char origin[64], about[1024];
    int o = webapp_options("ukey-portal", usage, argc, argv, 1, &portal);

    if (o >= 0) {
        ukey_verifier_free(portal.verifier);
        return o;
    }
    if (!portal.origin) {
        snprintf(origin, sizeof origin, "http://127.0.0.1:%u", portal.port);
        portal.origin = origin;
    }

    snprintf(about, sizeof about, "origin %s, agent %s", portal.origin, portal.agent);
    o = webapp_run("ukey-portal", portal.port, on_request, about);
    ukey_verifier_free(portal.verifier);
    return o;
}
