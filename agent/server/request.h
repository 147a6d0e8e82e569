/*
 * What the main port (http.c) and the probe (probe.c) read from a
 * libmicrohttpd request before they answer it, in one place so that both
 * ports refuse the same things: the guard's header facts, with the NUL
 * check libmicrohttpd 0.9.75 cannot do itself, and the query-argument cap.
 */
#ifndef UKEY_SERVER_REQUEST_H
#define UKEY_SERVER_REQUEST_H

#include "server/guard.h"

#include <microhttpd.h>

/* More query arguments than this are refused (INVALID_REQUEST): each one
 * costs a record in the connection's 32 KiB memory pool, and libmicrohttpd
 * 0.9.75 hangs a connection whose query does not fit instead of answering. */
#define REQUEST_MAX_QUERY_ARGS 32

/* Fills `g` (zeroed first; is_api left 0) from the request headers of `c`
 * through guard_add_header(). Valid until the request completes. */
void request_guard_read(struct MHD_Connection *c, struct guard_request *g);

/*
 * For MHD_OPTION_URI_LOG_CALLBACK, which sees the request target before
 * libmicrohttpd splits its query: if the query has more than
 * REQUEST_MAX_QUERY_ARGS arguments, cuts it off (none will be parsed) and
 * returns 1, so that the request can be answered with INVALID_REQUEST;
 * else returns 0 and leaves `uri` alone.
 */
int request_query_cut(const char *uri);

#endif
