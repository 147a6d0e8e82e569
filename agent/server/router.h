/*
 * The route table (like Redis's command table): one row per method + path,
 * with the handler and what the HTTP layer must do before calling it.
 * A path segment written "{id}" matches one non-empty segment, which the
 * handler receives as api_request.param.
 */
#ifndef UKEY_SERVER_ROUTER_H
#define UKEY_SERVER_ROUTER_H

#include "api/api.h"

#include <stddef.h>

#define ROUTE_JSON_BODY 0x1u /* POST or DELETE with a JSON object body (Content-Type enforced) */
#define ROUTE_EVENTS 0x2u    /* the Server-Sent Events stream (no handler: http.c streams it) */
#define ROUTE_SLOW 0x4u      /* may wait on the network: runs on a thread of its own */
#define ROUTE_SELF_ONLY 0x8u /* the agent's own pages only: no CORS, no other origin */
#define ROUTE_CARD 0x10u     /* talks to a card: a thread of its own, so that a slow card holds up no other request */

struct route {
    const char *method;
    const char *pattern;
    api_handler handler;
    unsigned flags;
};

enum router_match { ROUTER_FOUND, ROUTER_NO_PATH, ROUTER_NO_METHOD };

/*
 * Finds the route for method + path. On ROUTER_FOUND returns it and copies the
 * {id} segment (if any) into `param`. On ROUTER_NO_METHOD, `allow` receives
 * the methods the path does support ("GET, POST"), for the Allow header.
 */
const struct route *router_find(const char *method, const char *path, char *param,
                                size_t paramlen, char *allow, size_t allowlen,
                                enum router_match *match);

/* The flags of every route on `path`, whatever the method (for preflights). */
unsigned router_path_flags(const char *path);

/* Every row, for tests that walk the whole API (the route inventory). */
const struct route *router_table(size_t *count);

#endif
