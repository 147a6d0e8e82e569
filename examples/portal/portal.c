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

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define MAX_SESSIONS 1024
#define CHALLENGE_TTL_S 300
#define SESSION_TTL_S 3600
#define MAX_BODY 32768

struct session {
    char id[65];                /* hex of 32 random bytes; "" when free */
    time_t expires;
    char challenge[64];         /* Base64 of 32 bytes; "" once used */
    time_t challenge_expires;
    char subject[512], serial[80], algorithm[8];
};

static struct {
    struct ukey_verifier *verifier;
    const char *origin, *www, *sdk, *agent, *probe;
    struct session sessions[MAX_SESSIONS];
    pthread_mutex_t lock;
} portal = {.lock = PTHREAD_MUTEX_INITIALIZER};

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void random_hex(char *out, size_t bytes)
{
    unsigned char buf[64];
    if (bytes > sizeof buf || getrandom(buf, bytes, 0) != (ssize_t)bytes)
        abort(); /* no randomness: nothing safe to do */
    for (size_t i = 0; i < bytes; i++)
        sprintf(out + 2 * i, "%02x", buf[i]);
}

/* Base64 (with padding) of `bytes` random bytes. */
static void random_base64(char *out, size_t bytes)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char buf[48];
    size_t i, o = 0;
    if (bytes > sizeof buf || getrandom(buf, bytes, 0) != (ssize_t)bytes)
        abort(); /* no randomness: nothing safe to do */
    for (i = 0; i < bytes; i += 3) {
        size_t left = bytes - i;
        unsigned v = (unsigned)buf[i] << 16 | (left > 1 ? (unsigned)buf[i + 1] << 8 : 0) | (left > 2 ? buf[i + 2] : 0);
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = left > 1 ? b64[(v >> 6) & 63] : '=';
        out[o++] = left > 2 ? b64[v & 63] : '=';
    }
    out[o] = '\0';
}

/* The session named by the request's cookie (lock held), or NULL. */
static struct session *find_session(struct MHD_Connection *c)
{
    const char *id = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "portal_session");
    time_t now = time(NULL);
    if (!id || strlen(id) != 64)
        return NULL;
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (portal.sessions[i].id[0] && portal.sessions[i].expires > now && strcmp(portal.sessions[i].id, id) == 0)
            return &portal.sessions[i];
    return NULL;
}

/* A new session (lock held): a free or expired slot, else the oldest. */
static struct session *new_session(void)
{
    struct session *s = &portal.sessions[0];
    time_t now = time(NULL);
    for (int i = 0; i < MAX_SESSIONS; i++) {
        if (!portal.sessions[i].id[0] || portal.sessions[i].expires <= now) {
            s = &portal.sessions[i];
            break;
        }
        if (portal.sessions[i].expires < s->expires)
            s = &portal.sessions[i];
    }
    memset(s, 0, sizeof *s);
    random_hex(s->id, 32);
    s->expires = now + SESSION_TTL_S;
    return s;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *body, const char *cookie)
{
    char *text = json_dumps(body, JSON_COMPACT);
    struct MHD_Response *r;
    enum MHD_Result ret;
    json_decref(body);
    if (!text)
        return MHD_NO;
    r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (cookie) {
        char header[160];
        snprintf(header, sizeof header, "portal_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d", cookie,
                 SESSION_TTL_S);
        MHD_add_response_header(r, "Set-Cookie", header);
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code, const char *detail)
{
    return send_json(c, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "detail", detail), NULL);
}

static enum MHD_Result send_file(struct MHD_Connection *c, const char *url)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"}};
    char path[4200], csp[1024];
    const char *name = strcmp(url, "/") == 0 ? "/index.html" : url, *type = NULL, *dot = strrchr(name, '.');
    const char *dir = portal.www;
    FILE *f;
    long len;
    char *data;
    struct MHD_Response *r;
    enum MHD_Result ret;

    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            type = types[i].type;
    /* The SDK: the portal's own copy, so that it loads even when the agent
     * does not run (and can then say so). */
    if (strncmp(name, "/sdk/", 5) == 0) {
        dir = portal.sdk;
        name += 4;
    }
    if (!type || strstr(name, "..") || strchr(name + 1, '/'))
        return send_error(c, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no such page");
    snprintf(path, sizeof path, "%s%s", dir, name);
    if (!(f = fopen(path, "rb")))
        return send_error(c, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no such page");
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len < 0 || len > 1 << 20 || !(data = malloc((size_t)len + 1)) || fread(data, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        return MHD_NO;
    }
    fclose(f);
    if (!(r = MHD_create_response_from_buffer((size_t)len, data, MHD_RESPMEM_MUST_FREE))) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    /* The page may load the SDK from the agent and talk to it, nothing else. */
    snprintf(csp, sizeof csp,
             "default-src 'self'; script-src 'self' %s; connect-src 'self' %s %s; img-src 'self' data:; "
             "style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
             portal.agent, portal.agent, portal.probe);
    MHD_add_response_header(r, "Content-Security-Policy", csp);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result api_challenge(struct MHD_Connection *c)
{
    struct session *s;
    char challenge[64], cookie[65] = "";
    pthread_mutex_lock(&portal.lock);
    if (!(s = find_session(c))) {
        s = new_session();
        memcpy(cookie, s->id, sizeof cookie);
    }
    random_base64(challenge, 32);
    memcpy(s->challenge, challenge, sizeof challenge);
    s->challenge_expires = time(NULL) + CHALLENGE_TTL_S;
    pthread_mutex_unlock(&portal.lock);
    return send_json(c, MHD_HTTP_OK, json_pack("{s:s}", "challenge", challenge), cookie[0] ? cookie : NULL);
}

static enum MHD_Result api_login(struct MHD_Connection *c, const char *body, size_t len)
{
    json_error_t jerr;
    json_t *req = json_loadb(body, len, 0, &jerr), *token = json_object_get(req, "token");
    char challenge[64] = "", *token_text;
    struct ukey_verify_info info;
    ukey_verify_result r;
    struct session *s;

    if (!json_is_object(token)) {
        json_decref(req);
        return send_error(c, MHD_HTTP_BAD_REQUEST, "BAD_REQUEST", "send {\"token\": <the Web eID token>}");
    }
    /* The challenge is used once, whatever the outcome. */
    pthread_mutex_lock(&portal.lock);
    if ((s = find_session(c)) && s->challenge[0] && s->challenge_expires > time(NULL))
        memcpy(challenge, s->challenge, sizeof challenge);
    if (s)
        s->challenge[0] = '\0';
    pthread_mutex_unlock(&portal.lock);
    if (!challenge[0]) {
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
    pthread_mutex_lock(&portal.lock);
    if ((s = find_session(c))) {
        snprintf(s->subject, sizeof s->subject, "%s", info.subject);
        snprintf(s->serial, sizeof s->serial, "%s", info.serial);
        snprintf(s->algorithm, sizeof s->algorithm, "%s", info.algorithm);
    }
    pthread_mutex_unlock(&portal.lock);
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
    pthread_mutex_lock(&portal.lock);
    s = find_session(c);
    if (s && logout)
        memset(s, 0, sizeof *s);
    out = s && !logout && s->subject[0]
              ? json_pack("{s:b, s:s, s:s, s:s}", "logged_in", 1, "subject", s->subject, "serial", s->serial,
                          "algorithm", s->algorithm)
              : json_pack("{s:b}", "logged_in", 0);
    pthread_mutex_unlock(&portal.lock);
    return send_json(c, MHD_HTTP_OK, out, NULL);
}

struct upload {
    char *data;
    size_t len;
    int too_big;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **con_cls)
{
    struct upload *u = *con_cls;
    (void)cls;
    (void)version;
    if (!u) {
        if (!(u = calloc(1, sizeof *u)))
            return MHD_NO;
        *con_cls = u;
        return MHD_YES;
    }
    if (*size) {
        if (u->len + *size > MAX_BODY) {
            u->too_big = 1;
        } else {
            char *grown = realloc(u->data, u->len + *size + 1);
            if (!grown)
                return MHD_NO;
            memcpy(grown + u->len, data, *size);
            u->data = grown;
            u->len += *size;
        }
        *size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "POST") == 0) {
        /* Cross-site requests never get here with a session: the cookie is
         * SameSite=Strict; and a POST must come from our own page. */
        const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
        const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        if (!origin || strcmp(origin, portal.origin) != 0)
            return send_error(c, MHD_HTTP_FORBIDDEN, "FORBIDDEN", "requests must come from the portal's own page");
        if (!type || strncmp(type, "application/json", 16) != 0)
            return send_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", "send JSON");
        if (u->too_big)
            return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "BODY_TOO_LARGE", "the body is too large");
        if (strcmp(url, "/api/challenge") == 0)
            return api_challenge(c);
        if (strcmp(url, "/api/login") == 0)
            return api_login(c, u->data ? u->data : "", u->len);
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

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct upload *u = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (u) {
        free(u->data);
        free(u);
    }
}

static void usage(FILE *to)
{
    fprintf(to, "Usage: ukey-portal --ca-file CA.pem... [--crl CRL... | --crl-fetch] [--port 8088]\n"
                "                   [--origin http://127.0.0.1:8088] [--www DIR]\n"
                "                   [--agent https://127.0.0.1:27443] [--probe http://127.0.0.1:27480]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ca-file", required_argument, NULL, 'a'}, {"crl", required_argument, NULL, 'c'},
        {"crl-fetch", no_argument, NULL, 'f'},     {"port", required_argument, NULL, 'p'},
        {"origin", required_argument, NULL, 'o'},  {"www", required_argument, NULL, 'w'},
        {"agent", required_argument, NULL, 'g'},   {"probe", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    unsigned port = 8088;
    int fetch = 0, anchors = 0, o;
    char origin[64];
    struct sockaddr_in sa;
    struct MHD_Daemon *d;
    struct sigaction act;

    portal.www = UKEY_PORTAL_WWW;
    portal.sdk = UKEY_PORTAL_SDK;
    portal.agent = "https://127.0.0.1:27443";
    portal.probe = "http://127.0.0.1:27480";
    if (ukey_verifier_create(&portal.verifier) != UKEY_VERIFY_OK) {
        fprintf(stderr, "ukey-portal: out of memory\n");
        return 1;
    }
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'a': /* repeatable: e.g. an RSA/ECDSA CA and an SM2 CA */
            if (ukey_verifier_add_trust_anchors(portal.verifier, optarg) != UKEY_VERIFY_OK) {
                fprintf(stderr, "ukey-portal: cannot read the trust anchors in %s\n", optarg);
                return 1;
            }
            anchors++;
            break;
        case 'c':
            if (ukey_verifier_add_crl(portal.verifier, optarg) != UKEY_VERIFY_OK) {
                fprintf(stderr, "ukey-portal: cannot read the CRL in %s\n", optarg);
                return 1;
            }
            break;
        case 'f': fetch = 1; break;
        case 'p': port = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'o': portal.origin = optarg; break;
        case 'w': portal.www = optarg; break;
        case 'g': portal.agent = optarg; break;
        case 'r': portal.probe = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!anchors || port == 0 || port > 65535) {
        usage(stderr);
        return 2;
    }
    if (!portal.origin) {
        snprintf(origin, sizeof origin, "http://127.0.0.1:%u", port);
        portal.origin = origin;
    }
    ukey_verifier_set_crl_fetch(portal.verifier, fetch);

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0, NULL,
                         NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                         MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "ukey-portal: cannot listen on 127.0.0.1:%u: %s\n", port, strerror(errno));
        return 1;
    }
    memset(&act, 0, sizeof act);
    act.sa_handler = on_signal;
    sigaction(SIGINT, &act, NULL);
    sigaction(SIGTERM, &act, NULL);
    fprintf(stderr, "ukey-portal: listening on http://127.0.0.1:%u (origin %s, agent %s)\n", port, portal.origin,
            portal.agent);
    while (!stop)
        pause();
    MHD_stop_daemon(d);
    ukey_verifier_free(portal.verifier);
    return 0;
}
