/* The plain-HTTP probe; see probe.h. A libmicrohttpd daemon of its own
 * with a tiny connection budget, short timeouts and one route. */
#include "server/probe.h"

#include "localca/localca.h"
#include "server/peer.h"
#include "server/request.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/net.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Every client is 127.0.0.1, so a per-IP limit would be this limit again. */
#define PROBE_MAX_CONNECTIONS 64
/* A connection is closed this long after it was accepted, whatever it
 * does: libmicrohttpd's timeout counts idle time only, so a client that
 * trickles a header line now and then would hold its slot for ever. */
#define PROBE_DEADLINE_S 5

/* One open connection, from MHD's STARTED notice to its CLOSED notice. */
struct probe_conn {
    net_socket fd;                /* NET_INVALID: a free slot */
    int cut;                      /* shut down by the sweeper, not closed yet */
    long long since_ms;           /* clock_ms() when it was accepted */
};

struct probe_server {
    struct MHD_Daemon *daemon;
    struct guard_policy policy;   /* Host and Origin, for the probe's own port */
    unsigned port, https_port;
    char ca_path[4200];
    pthread_mutex_t lock;         /* guards conns, stopping */
    pthread_cond_t wake;
    pthread_t sweeper;
    int stopping;
    struct probe_conn conns[PROBE_MAX_CONNECTIONS];
};

/* MHD_OPTION_NOTIFY_CONNECTION (the daemon's thread): keeps `conns`. At
 * most PROBE_MAX_CONNECTIONS are open, so a free slot is always there. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct probe_server *p = cls;
    pthread_mutex_lock(&p->lock);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        for (size_t i = 0; info && i < PROBE_MAX_CONNECTIONS; i++)
            if (p->conns[i].fd == NET_INVALID) {
                p->conns[i] = (struct probe_conn){info->connect_fd, 0, clock_ms()};
                *socket_context = &p->conns[i];
                pthread_cond_signal(&p->wake); /* the sweeper sleeps while none is open */
                break;
            }
    } else if (*socket_context) {
        /* Before libmicrohttpd closes the socket: the sweeper never
         * touches a descriptor number that may be reused. */
        ((struct probe_conn *)*socket_context)->fd = NET_INVALID;
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&p->lock);
}

/* Shuts down each connection once it has been open for PROBE_DEADLINE_S
 * (at most a second late); libmicrohttpd then sees it end and closes it.
 * With no connection open the sweeper sleeps until one comes: an idle
 * agent has no timer waking it. */
static void *sweep(void *arg)
{
    struct probe_server *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        int open = 0;
        long long now = clock_ms();
        for (size_t i = 0; i < PROBE_MAX_CONNECTIONS; i++) {
            struct probe_conn *pc = &p->conns[i];
            if (pc->fd == NET_INVALID || pc->cut)
                continue;
            if (now - pc->since_ms >= PROBE_DEADLINE_S * 1000LL) {
                net_shutdown(pc->fd, 1);
                pc->cut = 1;
            } else {
                open = 1;
            }
        }
        if (open) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&p->wake, &p->lock, &until);
        } else {
            pthread_cond_wait(&p->wake, &p->lock);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void common_headers(struct MHD_Response *r, const char *cors_origin)
{
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "Vary", "Origin");
    if (cors_origin)
        MHD_add_response_header(r, "Access-Control-Allow-Origin", cors_origin);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body, const char *cors_origin)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    common_headers(r, cors_origin);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* MHD_OPTION_URI_LOG_CALLBACK: the request's context is the server, or
 * NULL when its query was cut (request.h). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)c;
    return request_query_cut(uri) ? NULL : cls;
}

/* Answers at the first call, from the headers alone (no route takes a
 * body); libmicrohttpd then closes the connection, which for a probe that
 * a page calls once is what we want anyway. Later calls for the same
 * request (a body sent all the same) only read it. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size,
                                  void **con_cls)
{
    struct probe_server *p = cls;
    struct guard_request g;
    const char *cors = NULL;
    char fp[65] = "";
    int query_cut = *con_cls != p;
    ukey_err e;
    (void)version;
    (void)upload_data;

    if (*con_cls == &p->port) { /* answered */
        *upload_size = 0;
        return MHD_YES;
    }
    *con_cls = &p->port;
    request_guard_read(c, &g);
    g.is_api = 1;
    e = guard_check(&p->policy, &g, &cors);
    if (e == UKEY_OK && query_cut)
        e = UKEY_ERR_BAD_REQUEST;
    if (e != UKEY_OK) {
        char body[128];
        snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\"}}", err_code(e));
        return reply(c, err_http_status(e), body, NULL);
    }
    if (strcmp(url, "/probe") != 0)
        return reply(c, MHD_HTTP_NOT_FOUND, "{\"error\":{\"code\":\"NOT_FOUND\"}}", cors);
    if (strcmp(method, "OPTIONS") == 0) {
        /* A CORS / Private Network Access preflight from an allowed page. */
        const char *pna = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Private-Network");
        struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret;
        if (!r)
            return MHD_NO;
        common_headers(r, cors);
        MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET");
        if (cors && pna && strcmp(pna, "true") == 0)
            MHD_add_response_header(r, "Access-Control-Allow-Private-Network", "true");
        ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"error\":{\"code\":\"METHOD_NOT_ALLOWED\"}}", cors);
    localca_fingerprint_file(p->ca_path, fp);
    {
        json_t *j = json_pack("{s:s, s:s, s:i, s:s}", "name", "ukey-agent", "version", UKEY_VERSION, "https_port",
                              (int)p->https_port, "ca_fingerprint_sha256", fp);
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        enum MHD_Result ret = text ? reply(c, MHD_HTTP_OK, text, cors) : MHD_NO;
        free(text);
        json_decref(j);
        return ret;
    }
}

/* MHD's accept policy: only the agent's own user (peer.h), before anything is read. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addrlen;
    return peer_admit(addr, ((struct probe_server *)cls)->port, "probe") ? MHD_YES : MHD_NO;
}

struct probe_server *probe_start(unsigned port, unsigned https_port, const char *state_dir,
                                 char *const *origins, size_t n_origins, char *err, size_t errlen)
{
    struct probe_server *p = calloc(1, sizeof *p);
    char why[200];
    net_socket fd;

    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* Bound here, so that the guard knows the port before the first request. */
    if ((fd = net_listen_loopback(AF_INET, port, 64, 0)) == NET_INVALID) {
        snprintf(err, errlen, "cannot listen on 127.0.0.1:%u: %s", port, net_strerror(why, sizeof why));
        free(p);
        return NULL;
    }
    p->port = net_local_port(fd);
    p->https_port = https_port;
    snprintf(p->ca_path, sizeof p->ca_path, "%s/%s", state_dir, LOCALCA_CA_FILE);
    guard_policy_init(&p->policy, p->port, origins, n_origins);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    for (size_t i = 0; i < PROBE_MAX_CONNECTIONS; i++)
        p->conns[i].fd = NET_INVALID;
    p->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, accept_policy, p, on_request, p,
                                 MHD_OPTION_LISTEN_SOCKET, fd,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)PROBE_MAX_CONNECTIONS,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)PROBE_DEADLINE_S,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192,
                                 MHD_OPTION_STRICT_FOR_CLIENT, 1,
                                 MHD_OPTION_NOTIFY_CONNECTION, on_connection, p,
                                 MHD_OPTION_URI_LOG_CALLBACK, on_uri, p,
                                 MHD_OPTION_END);
    if (!p->daemon || pthread_create(&p->sweeper, NULL, sweep, p) != 0) {
        snprintf(err, errlen, "cannot start the probe's HTTP engine");
        if (p->daemon)
            MHD_stop_daemon(p->daemon);
        else
            net_close(fd);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->wake);
        free(p);
        return NULL;
    }
    return p;
}

unsigned probe_port(const struct probe_server *p) { return p->port; }

void probe_stop(struct probe_server *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->sweeper, NULL);
    MHD_stop_daemon(p->daemon);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p);
}
