/* Shared by the example portals; see webapp.h. */
#include "webapp.h"

#include <ukey/verify.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define MAX_SESSIONS 1024
#define SESSION_TTL_S 3600

static struct session sessions[MAX_SESSIONS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void random_bytes(unsigned char *buf, size_t n)
{
    if (getrandom(buf, n, 0) != (ssize_t)n)
        abort(); /* no randomness: nothing safe to do */
}

void webapp_random_base64(char *out, size_t bytes)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char buf[48];
    size_t i, o = 0;
    if (bytes > sizeof buf)
        abort();
    random_bytes(buf, bytes);
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

void webapp_lock(void) { pthread_mutex_lock(&lock); }
void webapp_unlock(void) { pthread_mutex_unlock(&lock); }

struct session *webapp_find_session(struct MHD_Connection *c)
{
    const char *id = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "portal_session");
    time_t now = time(NULL);
    if (!id || strlen(id) != 64)
        return NULL;
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (sessions[i].id[0] && sessions[i].expires > now && strcmp(sessions[i].id, id) == 0)
            return &sessions[i];
    return NULL;
}

struct session *webapp_new_session(void)
{
    struct session *s = &sessions[0];
    unsigned char id[32];
    time_t now = time(NULL);
    for (int i = 0; i < MAX_SESSIONS; i++) {
        if (!sessions[i].id[0] || sessions[i].expires <= now) {
            s = &sessions[i];
            break;
        }
        if (sessions[i].expires < s->expires)
            s = &sessions[i];
    }
    memset(s, 0, sizeof *s);
    random_bytes(id, sizeof id);
    for (size_t i = 0; i < sizeof id; i++)
        sprintf(s->id + 2 * i, "%02x", id[i]);
    s->expires = now + SESSION_TTL_S;
    return s;
}

void webapp_new_challenge(struct MHD_Connection *c, char challenge[64], char cookie[65])
{
    struct session *s;
    cookie[0] = '\0';
    webapp_lock();
    if (!(s = webapp_find_session(c))) {
        s = webapp_new_session();
        memcpy(cookie, s->id, 65);
    }
    webapp_random_base64(challenge, 32);
    memcpy(s->challenge, challenge, 64);
    s->challenge_expires = time(NULL) + WEBAPP_CHALLENGE_TTL_S;
    webapp_unlock();
}

int webapp_take_challenge(struct MHD_Connection *c, char challenge[64])
{
    struct session *s;
    challenge[0] = '\0';
    webapp_lock();
    if ((s = webapp_find_session(c)) && s->challenge[0] && s->challenge_expires > time(NULL))
        memcpy(challenge, s->challenge, 64);
    if (s)
        s->challenge[0] = '\0';
    webapp_unlock();
    return challenge[0] ? 0 : -1;
}

char *webapp_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n <= 1 << 20 && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc((size_t)n + 1)) && fread(data, 1, (size_t)n, f) == (size_t)n) {
        data[n] = '\0';
        *len = (size_t)n;
    } else {
        free(data);
        data = NULL;
    }
    fclose(f);
    return data;
}

int webapp_static_path(const char *url, const char *www, const char *sdk, char *path, size_t cap, const char **type)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"}};
    const char *name = strcmp(url, "/") == 0 ? "/index.html" : url, *dot = strrchr(name, '.'), *dir = www;
    *type = NULL;
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            *type = types[i].type;
    /* The SDK: the portal's own copy, so that it loads even when the agent
     * does not run (and can then say so); /sdk/legacy/ for the facades. */
    if (strncmp(name, "/sdk/", 5) == 0) {
        dir = sdk;
        name += 4;
        if (strncmp(name, "/legacy/", 8) == 0 && strchr(name + 8, '/') == NULL) {
            snprintf(path, cap, "%s%s", dir, name);
            return *type && !strstr(name, "..") ? 0 : -1;
        }
    }
    if (!*type || strstr(name, "..") || strchr(name + 1, '/'))
        return -1;
    snprintf(path, cap, "%s%s", dir, name);
    return 0;
}

enum MHD_Result webapp_send(struct MHD_Connection *c, unsigned status, char *body, size_t len, const char *type,
                            const char *csp, const char *cookie)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (csp)
        MHD_add_response_header(r, "Content-Security-Policy", csp);
    if (cookie && cookie[0]) {
        char header[160];
        snprintf(header, sizeof header, "portal_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d", cookie,
                 SESSION_TTL_S);
        MHD_add_response_header(r, "Set-Cookie", header);
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

struct upload {
    char *data;
    size_t len;
    int too_big;
};

/* Collects the request body: 1 while it is still coming (return *ret then),
 * 0 once it is all there (*body, *len; *too_big). */
static int webapp_body(void **con_cls, const char *data, size_t *size, enum MHD_Result *ret, const char **body,
                       size_t *len, int *too_big)
{
    struct upload *u = *con_cls;
    *ret = MHD_YES;
    if (!u) {
        if (!(u = calloc(1, sizeof *u)))
            *ret = MHD_NO;
        *con_cls = u;
        return 1;
    }
    if (*size) {
        if (u->len + *size > WEBAPP_MAX_BODY) {
            u->too_big = 1;
        } else {
            char *grown = realloc(u->data, u->len + *size + 1);
            if (!grown) {
                *ret = MHD_NO;
                return 1;
            }
            memcpy(grown + u->len, data, *size);
            grown[u->len + *size] = '\0';
            u->data = grown;
            u->len += *size;
        }
        *size = 0;
        return 1;
    }
    *body = u->data ? u->data : "";
    *len = u->len;
    *too_big = u->too_big;
    return 0;
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

int webapp_options(const char *name, const char *usage, int argc, char **argv, int portal_options,
                   struct webapp_options *o)
{
    static const struct option opts[] = {
        {"ca-file", required_argument, NULL, 'a'}, {"crl", required_argument, NULL, 'c'},
        {"crl-fetch", no_argument, NULL, 'f'},     {"port", required_argument, NULL, 'p'},
        {"www", required_argument, NULL, 'w'},     {"agent", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},          {"origin", required_argument, NULL, 'o'},
        {"probe", required_argument, NULL, 'r'},   {NULL, 0, NULL, 0},
    };
    int anchors = 0, opt;
    unsigned long port = o->port;
    char *end;

    if (ukey_verifier_create(&o->verifier) != UKEY_VERIFY_OK) {
        fprintf(stderr, "%s: out of memory\n", name);
        return 1;
    }
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if ((opt == 'o' || opt == 'r') && !portal_options)
            opt = '?';
        switch (opt) {
        case 'a': /* repeatable: e.g. an RSA/ECDSA CA and an SM2 CA */
            if (ukey_verifier_add_trust_anchors(o->verifier, optarg) != UKEY_VERIFY_OK) {
                fprintf(stderr, "%s: cannot read the trust anchors in %s\n", name, optarg);
                return 1;
            }
            anchors++;
            break;
        case 'c':
            if (ukey_verifier_add_crl(o->verifier, optarg) != UKEY_VERIFY_OK) {
                fprintf(stderr, "%s: cannot read the CRL in %s\n", name, optarg);
                return 1;
            }
            break;
        case 'f': ukey_verifier_set_crl_fetch(o->verifier, 1); break;
        case 'p': port = strtoul(optarg, &end, 10); port = *end ? 0 : port; break;
        case 'w': o->www = optarg; break;
        case 'g': o->agent = optarg; break;
        case 'o': o->origin = optarg; break;
        case 'r': o->probe = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!anchors || optind != argc || port == 0 || port > 65535) {
        fputs(usage, stderr);
        return 2;
    }
    o->port = (unsigned)port;
    return -1;
}

static webapp_handler app; /* the portal's; one per process, like the session table */

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *data, size_t *size, void **con_cls)
{
    const char *body;
    size_t len;
    int too_big;
    enum MHD_Result ret;
    (void)cls;
    (void)version;
    if (webapp_body(con_cls, data, size, &ret, &body, &len, &too_big))
        return ret;
    return app(c, url, method, body, len, too_big);
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

int webapp_run(const char *name, unsigned port, webapp_handler handler, const char *about)
{
    struct sockaddr_in sa;
    struct sigaction act;
    struct MHD_Daemon *d;

    app = handler;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0, NULL,
                         NULL, on_access, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                         MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "%s: cannot listen on 127.0.0.1:%u: %s\n", name, port, strerror(errno));
        return 1;
    }
    fprintf(stderr, "%s: listening on http://127.0.0.1:%u (%s)\n", name, port, about);
    memset(&act, 0, sizeof act);
    act.sa_handler = on_signal;
    sigaction(SIGINT, &act, NULL);
    sigaction(SIGTERM, &act, NULL);
    while (!stop)
        pause();
    MHD_stop_daemon(d);
    return 0;
}
