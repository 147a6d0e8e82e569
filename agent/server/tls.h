/*
 * The TLS front: listening sockets on 127.0.0.1 and [::1], the mbedTLS
 * handshake, and a plaintext relay to libmicrohttpd through a socket pair per
 * connection. One non-blocking event loop (poller.h) in the calling thread;
 * no thread per connection, so a client that stalls its handshake only holds
 * its own slot until the handshake timeout. At max_connections a new connection
 * takes the place of the least active one (idle keep-alive connections and
 * slowloris clients cannot keep a fresh client out). The server chooses the
 * ECDHE group (X25519, then P-256); a returning client resumes its session
 * with a ticket sealed under keys that live only in memory for minutes
 * (TICKET_LIFETIME_S in tls.c).
 */
#ifndef UKEY_SERVER_TLS_H
#define UKEY_SERVER_TLS_H

#include "server/http.h"
#include "util/net.h"

#include <stddef.h>

struct tls_front;

struct tls_front_options {
    unsigned port;                  /* 0 = any free port (tests) */
    const char *cert_file;          /* PEM leaf */
    const char *key_file;           /* PEM key */
    unsigned max_connections;
    unsigned handshake_timeout_s;
    unsigned idle_timeout_s;
};

/*
 * Binds 127.0.0.1:port (required) and [::1]:port (when IPv6 loopback exists)
 * and loads the identity. Fails, never falling back to another port, when the
 * port is taken (security.md WEB-08). Returns NULL with `err`.
 */
struct tls_front *tls_front_create(const struct tls_front_options *opt, struct http_server *http,
                                   char *err, size_t errlen);

/* The port actually bound (useful with port 0). */
unsigned tls_front_port(const struct tls_front *front);

/* Replaces the TLS identity for new connections (after renewal); existing
 * connections keep theirs; tickets issued before are no longer resumed.
 * Returns 0, or -1 with `err` (old identity kept). */
int tls_front_reload(struct tls_front *front, const char *cert_file, const char *key_file,
                     char *err, size_t errlen);

/*
 * Runs the event loop until `*stop` becomes non-zero (set from a signal
 * handler) or `wake_fd` becomes readable. Calls `tick(arg)` about once per
 * `tick_s` seconds. Returns 0 on a clean stop.
 */
int tls_front_run(struct tls_front *front, volatile int *stop, net_socket wake_fd, unsigned tick_s,
                  void (*tick)(void *arg), void *arg);

void tls_front_destroy(struct tls_front *front);

#endif
