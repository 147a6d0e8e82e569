/*
 * The HTTP layer: a libmicrohttpd daemon with no listening socket of its own.
 * The TLS front (tls.c) hands it the plaintext end of a socket pair per client
 * connection. Every request goes through the guard, then the route table,
 * then a handler or the static files; this file alone writes responses and
 * the JSON error envelope.
 */
#ifndef UKEY_SERVER_HTTP_H
#define UKEY_SERVER_HTTP_H

#include "api/api.h"
#include "server/guard.h"
#include "util/net.h"

#include <stddef.h>

struct http_server;

/* Starts the daemon (its own threads). `agent` and `policy` must outlive it.
 * Returns NULL with `err` on failure. */
struct http_server *http_create(const struct agent_ctx *agent, const struct guard_policy *policy,
                                char *err, size_t errlen);

/* Gives connected socket `fd` (plaintext) to the daemon, which owns it from
 * now on even on failure. `peer` is the real client address, for logs.
 * Returns 0, or -1 if the daemon refused it (then fd is closed). */
int http_add_connection(struct http_server *srv, net_socket fd, const struct sockaddr *peer,
                        socklen_t peerlen);

void http_destroy(struct http_server *srv);

#endif
