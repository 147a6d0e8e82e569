/* The plain-HTTP probe; see probe.h. A libmicrohttpd daemon of its own
 * with a tiny connection budget, short timeouts and one route. */
#include "server/probe.h"

#include "localca/localca.h"
#include "server/peer.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct probe_server {
    struct MHD_Daemon *daemon;
    struct guard_policy policy;   /* Host and Origin, for the probe's own port */
    unsigned port, https_port;
    char ca_path[4200];
};

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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size,
                                  void **con_cls)
{
    struct probe_server *p = cls;
    struct guard_request g = {0};
    const char *cors = NULL;
    char fp[65] = "";
    ukey_err e;
    (void)version;
    (void)upload_data;

    if (!*con_cls) { /* first call: headers only */
        *con_cls = p;
        return MHD_YES;
    }
    if (*upload_size) { /* no route takes a body */
        *upload_size = 0;
        return MHD_YES;
    }
    g.host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    g.host_count = g.host != NULL;
    g.origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    g.origin_count = g.origin != NULL;
    g.sec_fetch_site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
    g.is_api = 1;
    if ((e = guard_check(&p->policy, &g, &cors)) != UKEY_OK) {
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
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = -1, one = 1;

    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* Bound here, so that the guard knows the port before the first request. */
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        snprintf(err, errlen, "cannot listen on 127.0.0.1:%u: %s", port, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(p);
        return NULL;
    }
    p->port = ntohs(sa.sin_port);
    p->https_port = https_port;
    snprintf(p->ca_path, sizeof p->ca_path, "%s/%s", state_dir, LOCALCA_CA_FILE);
    guard_policy_init(&p->policy, p->port, origins, n_origins);
    p->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, accept_policy, p, on_request, p,
                                 MHD_OPTION_LISTEN_SOCKET, fd,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)32,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192,
                                 MHD_OPTION_STRICT_FOR_CLIENT, 1,
                                 MHD_OPTION_END);
    if (!p->daemon) {
        snprintf(err, errlen, "cannot start the probe's HTTP engine");
        close(fd);
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
    MHD_stop_daemon(p->daemon);
    free(p);
}
