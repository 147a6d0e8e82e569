/* libmicrohttpd glue: guard, routing, responses; see http.h. */
#include "server/http.h"

#include "api/events.h"
#include "server/request.h"
#include "server/router.h"
#include "server/static.h"
#include "util/log.h"
#include "util/secret.h"

#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* At most this many requests wait on the network (ROUTE_SLOW) at once... */
#define MAX_JOBS 8
/* ...and this many on a card (ROUTE_CARD): they take turns on it, so more
 * would only wait longer; the next one hears TOKEN_BUSY. */
#define MAX_CARD_JOBS 32
/* ...of which one origin (or the local programs, with no Origin) may hold
 * this many, so that one site cannot queue the card for every other one;
 * its next one hears ORIGIN_BUSY. */
#define MAX_CARD_JOBS_PER_ORIGIN 8
/* How long shutdown waits for running slow requests (seconds). */
#define JOB_DRAIN_S 3

struct job;

struct http_server {
    struct MHD_Daemon *daemon;
    const struct agent_ctx *agent;
    const struct guard_policy *policy;
    pthread_mutex_t lock;       /* guards jobs, n_jobs, stopping */
    pthread_cond_t job_done;
    struct job *jobs;
    unsigned n_jobs;            /* running jobs, both kinds */
    unsigned n_card_jobs;       /* of which ROUTE_CARD */
    int stopping;
    /* Job threads whose job is over, to be joined: until a thread has
     * ended, its thread-local state (libcrypto's per-thread DRBGs, error
     * queue) is not freed, and a process ending first leaks it. Joined at
     * the next job's start and at shutdown; never more than the jobs that
     * may run at once (one start reaps them all). */
    pthread_t ended[MAX_JOBS + MAX_CARD_JOBS];
    unsigned n_ended;
};

/* Joins the threads in srv->ended (srv->lock held; they no longer take it). */
static void reap_ended(struct http_server *srv)
{
    while (srv->n_ended)
        pthread_join(srv->ended[--srv->n_ended], NULL);
}

/* A slow request (network or card): the connection is suspended while a thread of its own
 * runs the handler on copies of what it may read; the thread then resumes
 * the connection, whose next access-handler call sends the reply. */
struct job {
    struct job *next;
    struct http_server *srv;
    struct MHD_Connection *conn;
    api_handler handler;
    json_t *query, *headers;    /* copies (header names lower-cased) */
    json_t *body;
    char *method, *path, *origin, *param;
    struct api_reply reply;
    ukey_err result;
    int done, orphaned, card;
    int resumed;                /* shutdown resumed the connection: the thread must not */
};

/* Per-request state, from the first access-handler call to completion. */
struct req_ctx {
    const char *cors_origin;    /* allowed Origin to echo, owned by MHD */
    const struct route *route;
    enum router_match match;
    int is_api;
    int preflight;
    int checked;                /* check_headers() has run */
    int query_cut;              /* over REQUEST_MAX_QUERY_ARGS: refused */
    int body_error;             /* refused at the first call: the answer is queued */
    size_t body_dropped;        /* bytes of a (chunked) body past the cap, read and dropped */
    char allow[64];
    char param[128];
    char *body;                 /* may hold a PIN: wiped before free */
    size_t body_len;
    struct job *job;            /* a slow request under way */
};

/* Headers on every response (security.md 8.4). */
static void add_common_headers(struct MHD_Response *resp, const struct req_ctx *rc)
{
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (rc && rc->cors_origin) {
        /* Exact echo of an allowed origin, never "*", never credentials. */
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", rc->cors_origin);
    }
    MHD_add_response_header(resp, "Vary", "Origin");
}

#define JSON_FLAGS (JSON_COMPACT | JSON_ENSURE_ASCII)
/* The first guess at an answer's size: most fit (the status is ~300 bytes). */
#define JSON_GUESS 1024

/* `body` as text in a buffer of its own, written in one go (json_dumps grows
 * a buffer step by step and then copies it); NULL when out of memory. */
static char *json_text(const json_t *body, size_t *len)
{
    size_t cap = JSON_GUESS;
    char *text = malloc(cap);
    while (text) {
        size_t n = json_dumpb(body, text, cap, JSON_FLAGS);
        char *bigger;
        if (n == 0)
            break;
        if (n <= cap) {
            *len = n;
            return text;
        }
        cap = n;
        if (!(bigger = realloc(text, cap)))
            break;
        text = bigger;
    }
    free(text);
    return NULL;
}

static enum MHD_Result queue_json(struct MHD_Connection *c, const struct req_ctx *rc,
                                  unsigned status, json_t *body, const char *allow)
{
    size_t len;
    char *text = json_text(body, &len);
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (!text)
        return MHD_NO; /* out of memory: let MHD drop the connection */
    resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; frame-ancestors 'none'; sandbox");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
    if (allow)
        MHD_add_response_header(resp, "Allow", allow);
    if (status == 429) {
        /* Too soon (PIN_TOO_SOON): the envelope's wait in seconds too (RFC 9110 10.2.3). */
        json_t *after = json_object_get(json_object_get(body, "error"), "retry_after_ms");
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", ((long long)json_integer_value(after) + 999) / 1000);
        MHD_add_response_header(resp, "Retry-After", secs);
    }
    add_common_headers(resp, rc);
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The error envelope: {"error": {"code", "message", "i18n": {...}, extra...}}. */
static enum MHD_Result queue_error(struct MHD_Connection *c, const struct req_ctx *rc,
                                   ukey_err e, json_t *extra)
{
    char message[1024];
    json_t *err, *body;
    enum MHD_Result ret;

    snprintf(message, sizeof message, "%s / %s", err_message_zh(e), err_message_en(e));
    err = json_pack("{s:s, s:s, s:{s:s, s:s}}", "code", err_code(e), "message", message, "i18n",
                    "zh-CN", err_message_zh(e), "en", err_message_en(e));
    if (err && extra)
        json_object_update(err, extra);
    body = err ? json_pack("{s:o}", "error", err) : NULL;
    if (!body)
        return MHD_NO;
    ret = queue_json(c, rc, err_http_status(e),
                     body, e == UKEY_ERR_METHOD_NOT_ALLOWED && rc ? rc->allow : NULL);
    json_decref(body);
    return ret;
}

static enum MHD_Result queue_preflight(struct MHD_Connection *c, const struct req_ctx *rc)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    const char *pna = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Private-Network");
    enum MHD_Result ret;

    if (!resp)
        return MHD_NO;
    add_common_headers(resp, rc);
    if (rc->cors_origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", rc->allow);
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Content-Type");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        /* Private Network Access: only for allowed origins that asked for it. */
        if (pna && strcmp(pna, "true") == 0)
            MHD_add_response_header(resp, "Access-Control-Allow-Private-Network", "true");
        MHD_add_response_header(resp, "Vary", "Access-Control-Request-Method, "
                                              "Access-Control-Request-Headers, "
                                              "Access-Control-Request-Private-Network");
    } else {
        MHD_add_response_header(resp, "Allow", rc->allow);
    }
    ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result queue_static(struct MHD_Connection *c, const struct req_ctx *rc,
                                    const struct agent_ctx *agent, const char *url)
{
    struct static_file f;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (static_lookup(agent->cfg->webroot, url, &f) != 0)
        return queue_error(c, rc, UKEY_ERR_NOT_FOUND, NULL);
    if (f.owned)
        resp = MHD_create_response_from_buffer(f.len, f.owned, MHD_RESPMEM_MUST_FREE);
    else
        resp = MHD_create_response_from_buffer(f.len, (void *)f.data, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(f.owned);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", f.content_type);
    if (f.is_html) {
        /* Strict CSP: no inline script or style, nothing from other origins. */
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'");
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
        /* The page that opened ours (a portal's consent popup) keeps no
         * handle to it, so it cannot navigate it to a look-alike. */
        MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    }
    /* The SDK is loaded by portal pages on other origins (<script src>). */
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy",
                            strncmp(url, "/sdk/", 5) == 0 ? "cross-origin" : "same-origin");
    add_common_headers(resp, rc);
    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* First call for a request: headers are complete, the body is not read yet.
 * Returns UKEY_OK to go on (answer later), or the error to answer now. */
static ukey_err check_headers(struct http_server *srv, struct MHD_Connection *c,
                              struct req_ctx *rc, const char *url, const char *method)
{
    struct guard_request greq;
    const char *length;
    ukey_err e;

    request_guard_read(c, &greq);
    rc->is_api = strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0;
    greq.is_api = rc->is_api;
    e = guard_check(srv->policy, &greq, &rc->cors_origin);
    if (e != UKEY_OK)
        return e;
    if (rc->query_cut)
        return UKEY_ERR_BAD_REQUEST;

    if (!rc->is_api) {
        snprintf(rc->allow, sizeof rc->allow, "GET, HEAD, OPTIONS");
        if (strcmp(method, "OPTIONS") == 0) {
            rc->preflight = 1;
            return UKEY_OK;
        }
        return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0
                   ? UKEY_OK : UKEY_ERR_METHOD_NOT_ALLOWED;
    }
    /* Invariant 4: a state-changing request carries JSON, which a browser
     * cannot send cross-site without a CORS preflight (no simple-request CSRF). */
    if ((strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
         strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0) &&
        !guard_content_type_json(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type")))
        return UKEY_ERR_UNSUPPORTED_MEDIA_TYPE;
    length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (length && strtoull(length, NULL, 10) > srv->agent->cfg->max_body_bytes)
        return UKEY_ERR_BODY_TOO_LARGE;
    rc->route = router_find(strcmp(method, "HEAD") == 0 ? "GET" : method, url, rc->param,
                            sizeof rc->param, rc->allow, sizeof rc->allow, &rc->match);
    if (rc->match == ROUTER_NO_PATH)
        return UKEY_ERR_NOT_FOUND;
    if (router_path_flags(url) & ROUTE_SELF_ONLY) {
        /* The consent window's routes: the agent's own pages, no CORS at all. */
        rc->cors_origin = NULL;
        if (!guard_from_self(srv->policy, &greq))
            return UKEY_ERR_ORIGIN_NOT_ALLOWED;
    }
    strncat(rc->allow, ", OPTIONS", sizeof rc->allow - strlen(rc->allow) - 1);
    if (strcmp(method, "OPTIONS") == 0) {
        rc->preflight = 1;
        return UKEY_OK;
    }
    if (rc->match == ROUTER_NO_METHOD)
        return UKEY_ERR_METHOD_NOT_ALLOWED;
    return UKEY_OK;
}

/* Server-Sent Events: MHD pulls text from the hub; when there is none the
 * connection is suspended (no thread, no polling) until the hub wakes it. */
struct sse {
    struct MHD_Connection *conn;
    struct event_sub *sub;
};

static void sse_park(void *ctx) { MHD_suspend_connection(((struct sse *)ctx)->conn); }
static void sse_wake(void *ctx) { MHD_resume_connection(((struct sse *)ctx)->conn); }

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct sse *s = cls;
    ssize_t n = events_read(s->sub, buf, max);
    (void)pos;
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

static void sse_free(void *cls)
{
    struct sse *s = cls;
    events_unsubscribe(s->sub);
    free(s);
}

static enum MHD_Result queue_events(struct MHD_Connection *c, const struct req_ctx *rc)
{
    struct sse *s = calloc(1, sizeof *s);
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (!s)
        return queue_error(c, rc, UKEY_ERR_OUT_OF_MEMORY, NULL);
    s->conn = c;
    if (!(s->sub = events_subscribe(sse_park, sse_wake, s))) {
        ukey_err e = errno == EBUSY ? UKEY_ERR_AGENT_BUSY : UKEY_ERR_OUT_OF_MEMORY;
        free(s);
        return queue_error(c, rc, e, NULL);
    }
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
    if (!resp) {
        sse_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    add_common_headers(resp, rc);
    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static const char *request_query(const struct api_request *req, const char *key)
{
    return MHD_lookup_connection_value(req->http, MHD_GET_ARGUMENT_KIND, key);
}

static const char *request_header(const struct api_request *req, const char *key)
{
    return MHD_lookup_connection_value(req->http, MHD_HEADER_KIND, key);
}

static void job_free(struct job *j)
{
    json_decref(j->query);
    json_decref(j->headers);
    json_decref(j->body);
    json_decref(j->reply.json);
    json_decref(j->reply.error_extra);
    free(j->method);
    free(j->path);
    free(j->origin);
    free(j->param);
    free(j);
}

static const char *job_query(const struct api_request *req, const char *key)
{
    return json_string_value(json_object_get(((struct job *)req->http)->query, key));
}

/* A header name as the job's copy keys it: lower case (cut at 127 bytes). */
static const char *lower_key(const char *key, char lower[128])
{
    size_t i;
    for (i = 0; key[i] && i + 1 < 128; i++)
        lower[i] = (char)tolower((unsigned char)key[i]);
    lower[i] = '\0';
    return lower;
}

static const char *job_header(const struct api_request *req, const char *key)
{
    char lower[128];
    return json_string_value(json_object_get(((struct job *)req->http)->headers, lower_key(key, lower)));
}

static enum MHD_Result copy_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    char lower[128];
    if (!key || !value)
        return MHD_YES;
    if (kind == MHD_HEADER_KIND)
        key = lower_key(key, lower);
    if (!json_object_get(cls, key)) /* the first of repeated names, as MHD's lookup */
        json_object_set_new(cls, key, json_string(value));
    return MHD_YES;
}

static void *job_run(void *arg)
{
    struct job *j = arg;
    struct http_server *srv = j->srv;
    struct api_request req = {0};
    req.agent = srv->agent;
    req.method = j->method;
    req.path = j->path;
    req.origin = j->origin;
    req.param = j->param;
    req.body = j->body;
    req.query = job_query;
    req.header = job_header;
    req.http = j;
    j->result = j->handler(&req, &j->reply);

    pthread_mutex_lock(&srv->lock);
    j->done = 1;
    for (struct job **p = &srv->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    srv->n_jobs--;
    srv->n_card_jobs -= (unsigned)j->card;
    srv->ended[srv->n_ended++] = pthread_self();
    if (j->orphaned)
        job_free(j);
    else if (!j->resumed)
        MHD_resume_connection(j->conn);
    pthread_cond_broadcast(&srv->job_done);
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

/* How many card jobs of `origin` (NULL: no Origin) run now; srv->lock held. */
static unsigned card_jobs_of(const struct http_server *srv, const char *origin)
{
    unsigned n = 0;
    for (const struct job *j = srv->jobs; j; j = j->next)
        n += j->card && (origin && j->origin ? strcmp(origin, j->origin) == 0 : origin == j->origin);
    return n;
}

/* Starts the slow request of `rc` on its own thread and suspends the
 * connection; UKEY_OK, or the error to answer now. Takes `body`. */
static ukey_err job_start(struct http_server *srv, struct MHD_Connection *c, struct req_ctx *rc,
                          const char *url, const char *method, json_t *body)
{
    struct job *j = calloc(1, sizeof *j);
    pthread_t tid;
    int started;

    if (!j) {
        json_decref(body);
        return UKEY_ERR_OUT_OF_MEMORY;
    }
    j->srv = srv;
    j->conn = c;
    j->handler = rc->route->handler;
    j->body = body;
    j->query = json_object();
    j->headers = json_object();
    j->method = strdup(method);
    j->path = strdup(url);
    j->origin = rc->cors_origin ? strdup(rc->cors_origin) : NULL;
    j->param = rc->param[0] ? strdup(rc->param) : NULL;
    if (!j->query || !j->headers || !j->method || !j->path || (rc->cors_origin && !j->origin) ||
        (rc->param[0] && !j->param)) {
        job_free(j);
        return UKEY_ERR_OUT_OF_MEMORY;
    }
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, copy_value, j->query);
    MHD_get_connection_values(c, MHD_HEADER_KIND, copy_value, j->headers);

    pthread_mutex_lock(&srv->lock);
    j->card = (rc->route->flags & ROUTE_CARD) != 0;
    if (srv->stopping || (j->card ? srv->n_card_jobs >= MAX_CARD_JOBS : srv->n_jobs - srv->n_card_jobs >= MAX_JOBS)) {
        int card = j->card;
        pthread_mutex_unlock(&srv->lock);
        job_free(j);
        return card ? UKEY_ERR_TOKEN_BUSY : UKEY_ERR_AGENT_BUSY;
    }
    if (j->card && card_jobs_of(srv, j->origin) >= MAX_CARD_JOBS_PER_ORIGIN) {
        pthread_mutex_unlock(&srv->lock);
        job_free(j);
        return UKEY_ERR_ORIGIN_BUSY;
    }
    reap_ended(srv);
    /* Suspended before the thread exists, so its resume cannot come first. */
    MHD_suspend_connection(c);
    started = pthread_create(&tid, NULL, job_run, j) == 0;
    if (!started) {
        MHD_resume_connection(c);
        pthread_mutex_unlock(&srv->lock);
        job_free(j);
        return UKEY_ERR_AGENT_BUSY;
    }
    j->next = srv->jobs;
    srv->jobs = j;
    srv->n_jobs++;
    srv->n_card_jobs += (unsigned)j->card;
    rc->job = j;
    pthread_mutex_unlock(&srv->lock);
    return UKEY_OK;
}

static enum MHD_Result queue_reply(struct MHD_Connection *c, const struct req_ctx *rc, ukey_err e,
                                   const struct api_reply *reply)
{
    if (e == UKEY_OK && reply->json)
        return queue_json(c, rc, reply->status ? reply->status : MHD_HTTP_OK, reply->json, NULL);
    return queue_error(c, rc, e == UKEY_OK ? UKEY_ERR_INTERNAL : e, reply->error_extra);
}

static enum MHD_Result dispatch(struct http_server *srv, struct MHD_Connection *c,
                                struct req_ctx *rc, const char *url, const char *method)
{
    struct api_request req = {0};
    struct api_reply reply = {0};
    json_t *body = NULL;
    enum MHD_Result ret;
    ukey_err e;

    if (rc->preflight)
        return queue_preflight(c, rc);
    if (!rc->is_api)
        return queue_static(c, rc, srv->agent, url);
    if (rc->route->flags & ROUTE_EVENTS)
        return queue_events(c, rc);
    if (rc->job) {
        /* Resumed: by the job's thread when done, or by shutdown. */
        int done;
        pthread_mutex_lock(&srv->lock);
        done = rc->job->done;
        pthread_mutex_unlock(&srv->lock);
        return done ? queue_reply(c, rc, rc->job->result, &rc->job->reply) : MHD_NO;
    }
    if (rc->route->flags & ROUTE_JSON_BODY) {
        json_error_t jerr;
        body = rc->body ? json_loadb(rc->body, rc->body_len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
        if (!json_is_object(body)) {
            json_decref(body);
            return queue_error(c, rc, UKEY_ERR_INVALID_JSON, NULL);
        }
    }
    req.agent = srv->agent;
    req.method = method;
    req.path = url;
    req.origin = rc->cors_origin;
    req.param = rc->param[0] ? rc->param : NULL;
    req.body = body;
    req.query = request_query;
    req.header = request_header;
    req.http = c;
    if (rc->route->flags & (ROUTE_SLOW | ROUTE_CARD)) {
        e = job_start(srv, c, rc, url, method, body);
        return e == UKEY_OK ? MHD_YES : queue_error(c, rc, e, NULL);
    }
    e = rc->route->handler(&req, &reply);
    ret = queue_reply(c, rc, e, &reply);
    json_decref(reply.json);
    json_decref(reply.error_extra);
    json_decref(body);
    return ret;
}

/* A chunked body has no length to refuse it by before it arrives, and
 * libmicrohttpd 0.9.75 takes no answer in the middle of an upload: the part
 * past max_body_bytes is read and dropped, and the end of the request is
 * answered 413. A sender that goes on for this much more is cut off. */
#define BODY_DROP_MAX ((size_t)1 << 20)

/* A piece of the request body: kept (JSON routes) up to the cap, else
 * counted; past the cap, dropped (the 413 comes at the end). */
static enum MHD_Result take_body(struct http_server *srv, struct req_ctx *rc, const char *upload_data, size_t n)
{
    if (rc->body_error)
        return MHD_YES;
    if (rc->body_dropped || rc->body_len + n > srv->agent->cfg->max_body_bytes) {
        rc->body_dropped += n;
        return rc->body_dropped > BODY_DROP_MAX ? MHD_NO : MHD_YES;
    }
    if (rc->route && (rc->route->flags & ROUTE_JSON_BODY)) {
        char *grown = malloc(rc->body_len + n);
        if (!grown)
            return MHD_NO;
        /* Copy, then wipe the old buffer: realloc could leave a PIN behind. */
        if (rc->body) {
            memcpy(grown, rc->body, rc->body_len);
            secret_wipe(rc->body, rc->body_len);
            free(rc->body);
        }
        memcpy(grown + rc->body_len, upload_data, n);
        rc->body = grown;
    }
    rc->body_len += n;
    return MHD_YES;
}

/* MHD_OPTION_URI_LOG_CALLBACK: the request line is in, the query not yet
 * split. The per-request state starts here, so the first access-handler
 * call can refuse a query that was too long to keep. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct req_ctx *rc = calloc(1, sizeof *rc);
    (void)cls;
    (void)c;
    if (rc)
        rc->query_cut = request_query_cut(uri);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    struct http_server *srv = cls;
    struct req_ctx *rc = *con_cls;
    (void)version;

    if (!rc)
        return MHD_NO; /* on_uri() ran out of memory */
    if (!rc->checked) {
        ukey_err e;
        rc->checked = 1;
        e = check_headers(srv, c, rc, url, method);
        if (e != UKEY_OK) {
            char shown[96];
            log_sanitize(url, shown, sizeof shown);
            log_info("%s %s refused: %s", method, shown, err_code(e));
            rc->body_error = 1;
            /* Queued before the body is read: MHD closes the connection after. */
            return queue_error(c, rc, e, NULL);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        enum MHD_Result ret = take_body(srv, rc, upload_data, n);
        *upload_size = 0;
        /* MHD's read buffer held these bytes (a PIN): all consumed, so MHD
         * reads no more of them, and it frees its memory pool unwiped. */
        secret_wipe((void *)upload_data, n);
        return ret;
    }
    if (rc->body_error)
        return MHD_YES;
    if (rc->body_dropped)
        return queue_error(c, rc, UKEY_ERR_BODY_TOO_LARGE, NULL);
    return dispatch(srv, c, rc, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = cls;
    struct req_ctx *rc = *con_cls;
    (void)c;
    (void)toe;
    if (!rc)
        return;
    if (rc->job) {
        /* A job still running (only at shutdown) frees itself when done. */
        pthread_mutex_lock(&srv->lock);
        if (rc->job->done)
            job_free(rc->job);
        else
            rc->job->orphaned = 1;
        pthread_mutex_unlock(&srv->lock);
    }
    if (rc->body) {
        secret_wipe(rc->body, rc->body_len);
        free(rc->body);
    }
    free(rc);
    *con_cls = NULL;
}

/* Percent-decodes the request path in place. MHD's default would turn %00
 * into a NUL that silently cuts the path ("/%00/../x" becomes "/"); we turn
 * it into 0x01 instead, which no route or file name accepts. */
static size_t unescape_path(void *cls, struct MHD_Connection *c, char *uri)
{
    char *in = uri, *out = uri;
    (void)cls;
    (void)c;
    while (*in) {
        int hi, lo;
        if (in[0] == '%' && (hi = hexval(in[1])) >= 0 && (lo = hexval(in[2])) >= 0) {
            char v = (char)(hi * 16 + lo);
            *out++ = v ? v : '\x01';
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
    return (size_t)(out - uri);
}

/* What libmicrohttpd 0.9.75 says on every answer over the socket pair: its
 * TCP_NODELAY and TCP_CORK calls fail with EOPNOTSUPP, which it does not
 * take for "not TCP", and then it fears the answer waits in a buffer.
 * Nothing is wrong; three such lines an answer hid what mattered. */
static int mhd_noise(const char *line)
{
    static const char *const noise[] = {"Setting TCP_NODELAY option", "Setting TCP_CORK option",
                                        "Failed to push the data from buffers"};
    for (size_t i = 0; i < sizeof noise / sizeof noise[0]; i++)
        if (strncmp(line, noise[i], strlen(noise[i])) == 0)
            return 1;
    return 0;
}

UKEY_PRINTF(2, 0)
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    if (log_get_level() < LOG_DEBUG) /* formatted only when shown */
        return;
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\r\n")] = '\0';
    if (!mhd_noise(line))
        log_debug("http: %s", line);
}

struct http_server *http_create(const struct agent_ctx *agent, const struct guard_policy *policy,
                                char *err, size_t errlen)
{
    struct http_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->agent = agent;
    srv->policy = policy;
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->job_done, NULL);
    /* One internal thread: a pool of libmicrohttpd workers is handed its
     * connections by fd % workers, and a socket pair's second fd (the one
     * MHD gets) has the same parity for every connection when handshakes
     * finish in a row, so under load one worker had them all and the
     * other sat idle (bench: 0.43 vs 0.00 cores at 64 connections). Slow
     * requests run on threads of their own (job_start). */
    srv->daemon = MHD_start_daemon(
        MHD_USE_NO_LISTEN_SOCKET | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
            MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, /* first, so it sees everything */
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
        /* The TLS front holds the cap (max_connections, making room when
         * full); libmicrohttpd only learns that a connection the front
         * closed is gone when its thread next reads that pair, and until
         * then counts it. Under load it lagged behind, refused the fresh
         * connections ("Server reached connection limit") and their
         * clients saw the connection closed (test_robustness, CI). Twice
         * the cap leaves room for that lag; the front's cap still bounds
         * what clients can hold. */
        MHD_OPTION_CONNECTION_LIMIT, 2 * agent->cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, agent->cfg->idle_timeout_s,
        /* Caps request line + headers per connection (invariant 7). */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024,
        MHD_OPTION_STRICT_FOR_CLIENT, 1,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_path, NULL,
        MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "cannot start the HTTP engine (libmicrohttpd)");
        pthread_mutex_destroy(&srv->lock);
        pthread_cond_destroy(&srv->job_done);
        free(srv);
        return NULL;
    }
    return srv;
}

int http_add_connection(struct http_server *srv, net_socket fd, const struct sockaddr *peer,
                        socklen_t peerlen)
{
    return MHD_add_connection(srv->daemon, fd, peer, peerlen) == MHD_YES ? 0 : -1;
}

void http_destroy(struct http_server *srv)
{
    struct timespec until;
    unsigned left;
    if (!srv)
        return;
    /* Slow requests get a moment to finish (their threads resume their
     * connections as usual); the connections of those that do not are
     * resumed here (and closed), since MHD cannot stop with suspended ones. */
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += JOB_DRAIN_S;
    pthread_mutex_lock(&srv->lock);
    srv->stopping = 1;
    while (srv->n_jobs && pthread_cond_timedwait(&srv->job_done, &srv->lock, &until) == 0)
        ;
    reap_ended(srv);
    for (struct job *j = srv->jobs; j; j = j->next) {
        j->resumed = 1;
        MHD_resume_connection(j->conn);
    }
    pthread_mutex_unlock(&srv->lock);
    MHD_stop_daemon(srv->daemon);
    pthread_mutex_lock(&srv->lock);
    left = srv->n_jobs;
    pthread_mutex_unlock(&srv->lock);
    if (left) {
        /* Their threads still hold `srv`; the process is ending anyway. */
        log_warn("%u slow request(s) still running at shutdown", left);
        return;
    }
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->job_done);
    free(srv);
}
