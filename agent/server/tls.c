/* The mbedTLS front and plaintext relay to libmicrohttpd; see tls.h.
 *
 *   browser --TLS--> tcp socket [conn: ssl, up/down buffers] pair socket <--net_pair--> MHD
 *
 * Each connection is a small state machine: HANDSHAKE, then RELAY, where
 * bytes move client->MHD (ssl_read into `up`, write to the pair) and
 * MHD->client (read the pair into `down`, ssl_write). A direction only reads
 * when its buffer is empty, so a slow side applies back-pressure instead of
 * growing memory.
 */
#include "server/tls.h"

#include "server/peer.h"
#include "server/poller.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mbedtls_compat.h"
#include "util/net.h"
#include "util/rng.h"
#include "util/secret.h"

#include <limits.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RELAY_BUF 8192
/* What one recv() from a client may bring in: a request's TLS record
 * whole (mbedTLS asks for its 5-byte header, then the rest: two system
 * calls per record without this), or several records at once. */
#define TLS_IN_BUF 4096
#define MAX_LISTENERS 2
#define ACCEPTS_PER_ROUND 64

/*
 * Session tickets (RFC 5077) let a browser's next connection skip the
 * ECDHE and the signature: the session's state goes to the client sealed
 * with AES-256-GCM under a key that exists only in this process's memory.
 * A ticket is good for TICKET_LIFETIME_S after its full handshake (a
 * resumption issues no new one, so it never extends the session); mbedTLS
 * makes a new key every TICKET_LIFETIME_S and keeps the one before for the
 * tickets it sealed; when no ticket has been sealed for TICKET_LIFETIME_S
 * (all have expired) both keys are wiped, and an idle agent holds none.
 * A key therefore lives at most 3 x TICKET_LIFETIME_S (30 min), which
 * bounds what reading the process's memory could decrypt of past sessions:
 * forward secrecy is kept beyond that. Ten minutes covers a page's calls
 * and a login; a browser that comes back later pays one full handshake.
 */
#define TICKET_LIFETIME_S 600

/* A loaded certificate + key + config; connections hold a reference. */
struct tls_identity {
    mbedtls_ssl_config conf;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
    unsigned refs;
};

/* DRAIN: MHD has finished with the connection; we sent close_notify and a
 * FIN and discard what the client still sends for a moment, so that closing
 * with unread input (e.g. a refused large body) does not make the kernel
 * send an RST that destroys the response before the client reads it. */
enum conn_state { CONN_HANDSHAKE, CONN_RELAY, CONN_DRAIN };

#define DRAIN_MS 5000 /* a busy machine may need seconds to send the rest of a refused body */

struct conn {
    net_socket tcp;
    net_socket pair;            /* our end of the pair, NET_INVALID before RELAY */
    enum conn_state state;
    mbedtls_ssl_context ssl;
    struct tls_identity *id;
    int ssl_wants_write;        /* last TLS call needs the socket writable */
    int heard;                  /* the client has sent at least one byte */
    struct sockaddr_storage peer;
    socklen_t peerlen;
    long long deadline_ms;
    long long active_ms;        /* when bytes last moved, for eviction at the cap */
    short watch_tcp, watch_pair; /* what the poller watches on each socket */
    short rev_tcp, rev_pair;    /* what it saw ready in this round */
    unsigned char up[RELAY_BUF];
    size_t up_len, up_off;
    unsigned char down[RELAY_BUF];
    size_t down_len, down_off;
    unsigned char in[TLS_IN_BUF]; /* bytes from the client mbedTLS has not asked for yet */
    size_t in_len, in_off;
    int in_drained;             /* the last recv() emptied the socket: do not ask it again this round */
};

struct tls_front {
    net_socket listeners[MAX_LISTENERS];
    size_t n_listeners;
    unsigned port;
    struct tls_identity *id;
    struct http_server *http;
    struct conn **conns;
    size_t n_conns;
    struct tls_front_options opt;
    struct log_limit full_log;  /* the "connection limit reached" line, once per 10 s */
    struct poller *poller;
    struct poller_event *events;
    size_t max_events;
    mbedtls_ssl_ticket_context ticket;
    int ticket_keys;            /* `ticket` is set up (its keys exist) */
    long long ticket_wipe_ms;   /* when the last ticket sealed has expired */
};

/* I/O callbacks (ctx: the struct conn): non-blocking socket calls mapped
 * to mbedTLS's WANT codes. */
static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    long n = net_send(((struct conn *)ctx)->tcp, buf, len);
    if (n >= 0)
        return (int)n;
    if (net_would_block())
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct conn *c = ctx;
    size_t n;
    if (c->in_off == c->in_len) {
        long got = net_recv(c->tcp, c->in, sizeof c->in);
        if (got == 0)
            return 0; /* EOF */
        if (got < 0)
            return net_would_block() ? MBEDTLS_ERR_SSL_WANT_READ : MBEDTLS_ERR_NET_RECV_FAILED;
        c->heard = 1;
        c->in_len = (size_t)got;
        c->in_off = 0;
        c->in_drained = (size_t)got < sizeof c->in;
    }
    n = c->in_len - c->in_off < len ? c->in_len - c->in_off : len;
    memcpy(buf, c->in + c->in_off, n);
    c->in_off += n;
    return (int)n;
}

/* Whether reading the client's side may give something without the
 * poller's word: mbedTLS holds a record, or bytes wait in c->in. */
static int tls_pending(struct conn *c)
{
    return c->in_off < c->in_len || mbedtls_ssl_check_pending(&c->ssl);
}

/* SNI: browsers send none for IP literals. A name other than our own is a
 * rebinding attempt or a mistake, and fails the handshake (security.md
 * WEB-05). Some clients (wrk, old libraries) wrongly send the IP literal
 * itself; it names us, so it is accepted. */
static int check_sni(void *arg, mbedtls_ssl_context *ssl, const unsigned char *name, size_t len)
{
    static const char *const ours[] = {"localhost", "127.0.0.1", "::1"};
    (void)arg;
    (void)ssl;
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (len == strlen(ours[i]) && strncasecmp((const char *)name, ours[i], len) == 0)
            return 0;
    return -1;
}

/* Ticket callbacks (ctx: the front): keys made at the first ticket,
 * wiped by tickets_wipe. */
static int ticket_write(void *ctx, const mbedtls_ssl_session *session, unsigned char *start,
                        const unsigned char *end, size_t *tlen, uint32_t *lifetime)
{
    struct tls_front *front = ctx;
    if (!front->ticket_keys) {
        mbedtls_ssl_ticket_init(&front->ticket);
        if (mbedtls_ssl_ticket_setup(&front->ticket, rng_random, NULL, MBEDTLS_CIPHER_AES_256_GCM,
                                     TICKET_LIFETIME_S) != 0) {
            mbedtls_ssl_ticket_free(&front->ticket);
            return MBEDTLS_ERR_SSL_INTERNAL_ERROR; /* the handshake goes on without a ticket */
        }
        front->ticket_keys = 1;
    }
    front->ticket_wipe_ms = clock_ms() + TICKET_LIFETIME_S * 1000LL;
    return mbedtls_ssl_ticket_write(&front->ticket, session, start, end, tlen, lifetime);
}

/* A ticket that does not open (expired, from before a wipe or a restart,
 * forged) makes mbedTLS ignore it: a full handshake follows. */
static int ticket_parse(void *ctx, mbedtls_ssl_session *session, unsigned char *buf, size_t len)
{
    struct tls_front *front = ctx;
    if (!front->ticket_keys)
        return MBEDTLS_ERR_SSL_SESSION_TICKET_EXPIRED;
    return mbedtls_ssl_ticket_parse(&front->ticket, session, buf, len);
}

/* Zeroes both ticket keys; every ticket out there stops opening. */
static void tickets_wipe(struct tls_front *front)
{
    if (!front->ticket_keys)
        return;
    mbedtls_ssl_ticket_free(&front->ticket);
    front->ticket_keys = 0;
}

static void identity_unref(struct tls_identity *id)
{
    if (!id || --id->refs > 0)
        return;
    mbedtls_ssl_config_free(&id->conf);
    mbedtls_x509_crt_free(&id->cert);
    mbedtls_pk_free(&id->key);
    free(id);
}

static struct tls_identity *identity_load(struct tls_front *front, const char *cert_file,
                                          const char *key_file, char *err, size_t errlen)
{
    static const char *alpn[] = {"http/1.1", NULL};
    struct tls_identity *id = calloc(1, sizeof *id);
    int rc;
    if (!id) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    id->refs = 1;
    mbedtls_ssl_config_init(&id->conf);
    mbedtls_x509_crt_init(&id->cert);
    mbedtls_pk_init(&id->key);
    if ((rc = compat_x509_crt_parse_file(&id->cert, cert_file)) != 0) {
        compat_strerror(rc, err, errlen);
        goto fail;
    }
    if ((rc = compat_pk_parse_keyfile(&id->key, key_file, rng_random, NULL)) != 0 ||
        (rc = mbedtls_ssl_config_defaults(&id->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT)) != 0 ||
        (rc = mbedtls_ssl_conf_own_cert(&id->conf, &id->cert, &id->key)) != 0 ||
        (rc = mbedtls_ssl_conf_alpn_protocols(&id->conf, alpn)) != 0) {
        compat_strerror(rc, err, errlen);
        goto fail;
    }
    mbedtls_ssl_conf_rng(&id->conf, rng_random, NULL);
    compat_ssl_conf_server_crypto(&id->conf);
    mbedtls_ssl_conf_sni(&id->conf, check_sni, NULL);
    /* No renegotiation (the default, said out loud). */
    mbedtls_ssl_conf_renegotiation(&id->conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    mbedtls_ssl_conf_session_tickets_cb(&id->conf, ticket_write, ticket_parse, front);
    return id;
fail:
    identity_unref(id);
    return NULL;
}

int tls_front_reload(struct tls_front *front, const char *cert_file, const char *key_file,
                     char *err, size_t errlen)
{
    struct tls_identity *id = identity_load(front, cert_file, key_file, err, errlen);
    if (!id)
        return -1;
    /* A session of the old certificate is not resumed under the new one. */
    tickets_wipe(front);
    identity_unref(front->id);
    front->id = id;
    return 0;
}

/* Listens on 127.0.0.1 or [::1]. Returns 0, or -1 with `err`; `*in_use`
 * says whether the port was taken. */
static int listen_on(int family, unsigned port, net_socket *out, int *in_use, char *err, size_t errlen)
{
    char why[200];
    /* The kernel's largest backlog: a flood of connections fills a short
     * queue between two accept turns, and a browser's SYN dropped there
     * waits a second for its retry. */
    *out = net_listen_loopback(family, port, SOMAXCONN, 1);
    if (*out != NET_INVALID)
        return 0;
    *in_use = net_addr_in_use();
    snprintf(err, errlen, "%s:%u: %s%s", family == AF_INET ? "127.0.0.1" : "[::1]", port,
             net_strerror(why, sizeof why),
             *in_use ? " (PORT_IN_USE: is another ukey-agent already running? "
                       "The agent never moves to another port.)" : "");
    return -1;
}

struct tls_front *tls_front_create(const struct tls_front_options *opt, struct http_server *http,
                                   char *err, size_t errlen)
{
    struct tls_front *front = calloc(1, sizeof *front);
    char v6err[256];
    net_socket fd;
    int in_use = 0;

    if (!front || !(front->conns = calloc(opt->max_connections, sizeof *front->conns))) {
        free(front);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    front->opt = *opt;
    front->full_log = (struct log_limit)LOG_LIMIT_INIT(10000);
    front->http = http;
    front->max_events = MAX_LISTENERS + 1 + 2 * (size_t)opt->max_connections;
    if (!(front->events = calloc(front->max_events, sizeof *front->events)) ||
        !(front->poller = poller_new(front->max_events))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(front->id = identity_load(front, opt->cert_file, opt->key_file, err, errlen)))
        goto fail;
    if (listen_on(AF_INET, opt->port, &fd, &in_use, err, errlen) != 0)
        goto fail;
    front->listeners[front->n_listeners++] = fd;
    front->port = net_local_port(fd);
    if (listen_on(AF_INET6, front->port, &fd, &in_use, v6err, sizeof v6err) == 0) {
        front->listeners[front->n_listeners++] = fd;
    } else if (in_use && opt->port != 0) {
        snprintf(err, errlen, "%s", v6err);
        goto fail;
    } else {
        log_info("not listening on [::1]: %s", v6err);
    }
    return front;
fail:
    tls_front_destroy(front);
    return NULL;
}

unsigned tls_front_port(const struct tls_front *front) { return front->port; }

static void conn_close(struct tls_front *front, size_t i)
{
    struct conn *c = front->conns[i];
    if (c->state == CONN_RELAY)
        mbedtls_ssl_close_notify(&c->ssl); /* best effort, non-blocking */
    poller_watch(front->poller, c->tcp, c->watch_tcp, 0, NULL);
    net_close(c->tcp);
    if (c->pair != NET_INVALID)
        poller_watch(front->poller, c->pair, c->watch_pair, 0, NULL);
    net_close(c->pair);
    mbedtls_ssl_free(&c->ssl); /* zeroizes its record buffers */
    identity_unref(c->id);
    /* The relay buffers carried requests (with PINs) and answers. */
    if (c->state != CONN_HANDSHAKE) {
        secret_wipe(c->up, sizeof c->up);
        secret_wipe(c->down, sizeof c->down);
    }
    free(c);
    front->conns[i] = front->conns[--front->n_conns];
}

/*
 * At the connection cap a new connection takes the place of one that has
 * done least lately: one draining, else the one whose bytes moved longest
 * ago (for one that has sent nothing: accepted longest ago). Idle
 * keep-alive connections, stalled handshakes and slowloris clients then
 * cannot keep a fresh client out (the cap bounds memory either way).
 * When a quarter or more of the connections have never sent a byte, a
 * flood of silent connections is under way: then the oldest silent one
 * makes room, so the flood only pushes out its own kind, never a request
 * waiting for its answer (a login waits for the card or the user).
 */
static void make_room(struct tls_front *front)
{
    size_t victim = 0, oldest_silent = SIZE_MAX, n_silent = 0;
    for (size_t i = 0; i < front->n_conns; i++) {
        const struct conn *c = front->conns[i], *v = front->conns[victim];
        if ((c->state == CONN_DRAIN) != (v->state == CONN_DRAIN) ? c->state == CONN_DRAIN
                                                                   : c->active_ms < v->active_ms)
            victim = i;
        if (!c->heard && c->state == CONN_HANDSHAKE) {
            n_silent++;
            if (oldest_silent == SIZE_MAX || c->active_ms < front->conns[oldest_silent]->active_ms)
                oldest_silent = i;
        }
    }
    if (front->conns[victim]->state != CONN_DRAIN && n_silent * 4 >= front->n_conns)
        victim = oldest_silent;
    conn_close(front, victim);
}

static void accept_new(struct tls_front *front, net_socket lfd)
{
    for (int k = 0; k < ACCEPTS_PER_ROUND; k++) {
        struct sockaddr_storage peer;
        socklen_t plen;
        struct conn *c;
        net_socket fd = net_accept(lfd, &peer, &plen);
        if (fd == NET_INVALID)
            return;
        /* Only the agent's own user, before any TLS work (peer.h). */
        if (!peer_admit((struct sockaddr *)&peer, front->port, "HTTPS")) {
            net_close(fd);
            continue;
        }
        if (front->n_conns >= front->opt.max_connections) {
            unsigned long held;
            if (log_limit_pass(&front->full_log, &held)) {
                char more[80] = "";
                if (held)
                    snprintf(more, sizeof more, " (reached %lu more times since the last such line)", held);
                log_warn("connection limit (%u) reached; the least active (in a flood, the oldest silent) connections "
                         "make room%s", front->opt.max_connections, more);
            }
            make_room(front);
        }
        if (!(c = calloc(1, sizeof *c))) {
            net_close(fd);
            continue;
        }
        c->tcp = fd;
        c->pair = NET_INVALID;
        c->peer = peer;
        c->peerlen = plen;
        c->id = front->id;
        c->id->refs++;
        c->active_ms = clock_ms();
        c->deadline_ms = c->active_ms + (long long)front->opt.handshake_timeout_s * 1000;
        mbedtls_ssl_init(&c->ssl);
        if (mbedtls_ssl_setup(&c->ssl, &c->id->conf) != 0) {
            front->conns[front->n_conns++] = c;
            conn_close(front, front->n_conns - 1);
            continue;
        }
        mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
        front->conns[front->n_conns++] = c;
    }
}

/* Handshake done: make the pair and give one end to libmicrohttpd. */
static int start_relay(struct tls_front *front, struct conn *c)
{
    net_socket sv[2];
    char why[200];
    if (net_pair(sv) != 0) {
        log_warn("socket pair: %s", net_strerror(why, sizeof why));
        return -1;
    }
    if (http_add_connection(front->http, sv[1], (struct sockaddr *)&c->peer, c->peerlen) != 0) {
        net_close(sv[0]);
        return -1;
    }
    c->pair = sv[0];
    c->state = CONN_RELAY;
    c->deadline_ms = clock_ms() + (long long)front->opt.idle_timeout_s * 1000;
    return 0;
}

/* The request bytes in `up` are passed on (or dropped): wiped at once, as
 * they may hold a PIN. */
static void up_done(struct conn *c)
{
    secret_wipe(c->up, c->up_len);
    c->up_len = 0;
}

/* Moves as many bytes as possible in both directions. A socket is read
 * only when the poller saw it ready (`tcp_ready`: any event on the client's
 * socket; `pair_ready`: input, EOF or an error on the pair) or when
 * mbedTLS already holds a record: the poller is level-triggered, so what one
 * round leaves in the kernel wakes the next, and no recv() is spent just to
 * learn EAGAIN. Returns 0 to keep the connection, 1 when MHD has closed
 * its side (everything it sent is passed on), -1 to close it now. */
static int relay(struct tls_front *front, struct conn *c, int tcp_ready, int pair_ready)
{
    int progress = 1, moved = 0;
    c->ssl_wants_write = 0;
    while (progress) {
        int r;
        progress = 0;
        /* client -> MHD */
        if (c->up_len == 0 && (tcp_ready || tls_pending(c))) {
            c->in_drained = 0;
            r = mbedtls_ssl_read(&c->ssl, c->up, sizeof c->up);
            if (r > 0) {
                c->up_len = (size_t)r;
                c->up_off = 0;
                progress = 1;
                /* A short recv() emptied the socket: the next record, if
                 * any, is the poller's to announce (it is level-triggered),
                 * not a recv() that says EAGAIN. */
                if (c->in_drained)
                    tcp_ready = 0;
            } else if (r == MBEDTLS_ERR_SSL_WANT_WRITE) {
                c->ssl_wants_write = 1;
                tcp_ready = 0;
            } else if (r == MBEDTLS_ERR_SSL_WANT_READ) {
                tcp_ready = 0;
            } else {
                return -1; /* close_notify, EOF or a TLS error: the client is gone */
            }
        }
        if (c->up_len > 0) {
            long w = net_send(c->pair, c->up + c->up_off, c->up_len - c->up_off);
            if (w > 0) {
                c->up_off += (size_t)w;
                if (c->up_off == c->up_len)
                    up_done(c);
                progress = 1;
            } else if (w < 0 && net_conn_reset()) {
                /* MHD has answered and closed (e.g. 413 before the body):
                 * drop the rest of the request, keep passing its answer on. */
                up_done(c);
                progress = 1;
            } else if (w < 0 && !net_would_block()) {
                return -1;
            }
        }
        /* MHD -> client */
        if (c->down_len == 0 && pair_ready) {
            long n = net_recv(c->pair, c->down, sizeof c->down);
            if (n > 0) {
                c->down_len = (size_t)n;
                c->down_off = 0;
                progress = 1;
                pair_ready = (size_t)n == sizeof c->down; /* a short read emptied it */
            } else if (n == 0 || net_conn_reset()) {
                /* MHD closed the connection after its response; ECONNRESET
                 * when it closed with request bytes still unread. */
                return 1;
            } else if (net_would_block()) {
                pair_ready = 0;
            } else {
                return -1;
            }
        }
        if (c->down_len > 0) {
            r = mbedtls_ssl_write(&c->ssl, c->down + c->down_off, c->down_len - c->down_off);
            if (r > 0) {
                c->down_off += (size_t)r;
                if (c->down_off == c->down_len)
                    c->down_len = 0;
                progress = 1;
            } else if (r == MBEDTLS_ERR_SSL_WANT_WRITE) {
                c->ssl_wants_write = 1;
            } else if (r != MBEDTLS_ERR_SSL_WANT_READ) {
                return -1;
            }
        }
        moved |= progress;
    }
    if (moved) {
        c->active_ms = clock_ms();
        c->deadline_ms = c->active_ms + (long long)front->opt.idle_timeout_s * 1000;
    }
    return 0;
}

/* Switches to DRAIN: close_notify, FIN, and a short wait for the client's EOF. */
static void start_drain(struct tls_front *front, struct conn *c)
{
    mbedtls_ssl_close_notify(&c->ssl);
    net_shutdown(c->tcp, 0);
    poller_watch(front->poller, c->pair, c->watch_pair, 0, NULL);
    c->watch_pair = 0;
    net_close(c->pair);
    c->pair = NET_INVALID;
    c->state = CONN_DRAIN;
    c->ssl_wants_write = 0;
    c->deadline_ms = clock_ms() + DRAIN_MS;
}

/* Reads and drops what the client still sends; -1 at its EOF or an error. */
static int drain(struct conn *c)
{
    unsigned char scratch[4096];
    for (;;) {
        long n = net_recv(c->tcp, scratch, sizeof scratch);
        if (n > 0)
            continue;
        return n < 0 && net_would_block() ? 0 : -1;
    }
}

/* Advances one connection after the poller saw activity on it (see relay()
 * for the two flags). Returns 0 to keep it, -1 to close it. */
static int conn_step(struct tls_front *front, struct conn *c, int tcp_ready, int pair_ready)
{
    int r;
    if (c->state == CONN_DRAIN)
        return drain(c);
    if (c->state == CONN_HANDSHAKE) {
        c->active_ms = clock_ms();
        r = mbedtls_ssl_handshake(&c->ssl);
        c->ssl_wants_write = r == MBEDTLS_ERR_SSL_WANT_WRITE;
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
            return 0;
        if (r != 0) {
            char why[200];
            compat_strerror(r, why, sizeof why);
            log_debug("TLS handshake failed: %s", why);
            return -1;
        }
        if (start_relay(front, c) != 0)
            return -1;
        /* A resuming client's request may come with its Finished. */
        tcp_ready = 1;
        pair_ready = 0;
    }
    r = relay(front, c, tcp_ready, pair_ready);
    if (r == 1) {
        start_drain(front, c);
        return drain(c);
    }
    return r;
}

/* The poller's tags: wake_tag for the wake-up socket, a listener's slot, a
 * connection for its TCP socket and the next byte's address (never a
 * connection's, they are aligned) for its pair. */
static char wake_tag;
static void *pair_tag(struct conn *c) { return (char *)c + 1; }

/* Brings what the poller watches in line with what each connection waits
 * for (no system call when nothing changed); clears last round's events.
 * Returns the time left to the nearest deadline, at most `wait`. */
static long long watch_conns(struct tls_front *front, long long t, long long wait)
{
    for (size_t i = front->n_conns; i-- > 0;) {
        struct conn *c = front->conns[i];
        short ev = (short)(c->ssl_wants_write ? POLLOUT : 0), pev = 0;
        if (c->state != CONN_RELAY || c->up_len == 0)
            ev |= POLLIN;
        if (c->pair != NET_INVALID)
            pev = (short)((c->down_len == 0 ? POLLIN : 0) | (c->up_len > 0 ? POLLOUT : 0));
        if (poller_watch(front->poller, c->tcp, c->watch_tcp, ev, c) != 0 ||
            (c->pair != NET_INVALID && poller_watch(front->poller, c->pair, c->watch_pair, pev, pair_tag(c)) != 0)) {
            char why[200];
            log_warn("cannot watch a connection: %s", net_strerror(why, sizeof why));
            conn_close(front, i);
            continue;
        }
        c->watch_tcp = ev;
        c->watch_pair = pev;
        c->rev_tcp = c->rev_pair = 0;
        if (c->deadline_ms - t < wait)
            wait = c->deadline_ms - t;
    }
    return wait;
}

int tls_front_run(struct tls_front *front, volatile int *stop, net_socket wake_fd, unsigned tick_s,
                  void (*tick)(void *arg), void *arg)
{
    long long next_tick = clock_ms() + (long long)tick_s * 1000;
    int rc = 0;

    for (size_t i = 0; i < front->n_listeners; i++)
        if (poller_watch(front->poller, front->listeners[i], 0, POLLIN, &front->listeners[i]) != 0)
            rc = -1;
    if (rc != 0 || poller_watch(front->poller, wake_fd, 0, POLLIN, &wake_tag) != 0)
        return -1;
    while (!*stop) {
        long long t = clock_ms(), wait;
        int n, woken = 0, listener_ready[MAX_LISTENERS] = {0};
        wait = watch_conns(front, t, next_tick - t);
        if (front->ticket_keys && front->ticket_wipe_ms - t < wait)
            wait = front->ticket_wipe_ms - t;
        if (wait < 0)
            wait = 0;
        /* Until the next deadline or tick: an idle agent sleeps here (a
         * signal writes to wake_fd). */
        if ((n = poller_wait(front->poller, front->events, front->max_events,
                             (int)(wait > INT_MAX ? INT_MAX : wait))) < 0) {
            rc = -1;
            break;
        }
        /* Every event is noted on its connection before any connection
         * closes (and is freed). */
        for (int k = 0; k < n; k++) {
            void *tag = front->events[k].tag;
            short rev = front->events[k].revents;
            size_t l = 0;
            while (l < front->n_listeners && tag != &front->listeners[l])
                l++;
            if (tag == &wake_tag)
                woken = 1;
            else if (l < front->n_listeners)
                listener_ready[l] = 1;
            else if (((uintptr_t)tag & 1) != 0)
                ((struct conn *)((char *)tag - 1))->rev_pair = rev;
            else
                ((struct conn *)tag)->rev_tcp = rev;
        }
        if (woken)
            break;
        t = clock_ms();
        for (size_t i = front->n_conns; i-- > 0;) {
            struct conn *c = front->conns[i];
            int active = c->rev_tcp || c->rev_pair;
            if ((active && conn_step(front, c, c->rev_tcp != 0, (c->rev_pair & (POLLIN | POLLHUP | POLLERR)) != 0) != 0) ||
                (!active && t >= c->deadline_ms)) {
                if (!active && c->state == CONN_HANDSHAKE)
                    log_debug("TLS handshake timed out");
                conn_close(front, i);
            }
        }
        for (size_t i = 0; i < front->n_listeners; i++)
            if (listener_ready[i])
                accept_new(front, front->listeners[i]);
        if (front->ticket_keys && t >= front->ticket_wipe_ms)
            tickets_wipe(front);
        if (tick && t >= next_tick) {
            tick(arg);
            next_tick = t + (long long)tick_s * 1000;
        }
    }
    poller_watch(front->poller, wake_fd, POLLIN, 0, NULL);
    for (size_t i = 0; i < front->n_listeners; i++)
        poller_watch(front->poller, front->listeners[i], POLLIN, 0, NULL);
    return rc;
}

void tls_front_destroy(struct tls_front *front)
{
    if (!front)
        return;
    while (front->n_conns > 0)
        conn_close(front, front->n_conns - 1);
    for (size_t i = 0; i < front->n_listeners; i++)
        net_close(front->listeners[i]);
    identity_unref(front->id);
    tickets_wipe(front);
    poller_free(front->poller);
    free(front->events);
    free(front->conns);
    free(front);
}
