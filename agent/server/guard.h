/*
 * The request guard: the checks every request passes before any handler
 * runs (DESIGN.md security invariants 2-4, 7; security.md 3.6, 7.1, 8.3).
 * Pure functions over already-extracted header values, so they are unit
 * tested and fuzzed without a server.
 *
 * Order: header syntax (NUL, duplicates, body framing) -> Host (DNS
 * rebinding) -> Origin allow-list -> Fetch Metadata ->
 * method/route -> Content-Type -> body size.
 */
#ifndef UKEY_SERVER_GUARD_H
#define UKEY_SERVER_GUARD_H

#include "util/error.h"

#include <stddef.h>

struct guard_policy {
    unsigned port;
    char *const *origins;  /* configured allow-list entries (borrowed) */
    size_t n_origins;
    char self[3][48];      /* https://127.0.0.1:PORT, https://localhost:PORT, https://[::1]:PORT */
};

/* The request facts the guard looks at; NULL for an absent header. Filled
 * by guard_add_header() for each header line (the first value of a name is
 * kept), then is_api by the caller. */
struct guard_request {
    const char *host;
    unsigned host_count;
    const char *origin;
    unsigned origin_count;
    const char *sec_fetch_site;
    unsigned content_length_count;
    unsigned transfer_encoding_count;
    int nul;               /* a header value holds a NUL byte */
    int is_api;            /* path under /api/ */
};

/* Fills the agent's own origins for `port` into `policy`. */
void guard_policy_init(struct guard_policy *policy, unsigned port, char *const *origins,
                       size_t n_origins);

/*
 * Notes one header line in `req`: counts Host, Origin, Content-Length and
 * Transfer-Encoding (names case-insensitive), keeps the first Host, Origin
 * and Sec-Fetch-Site value, and sets req->nul when the `value_len` bytes of
 * `value` hold a NUL (a value that a C string would cut short, so that
 * "127.0.0.1:PORT\0.attacker.example" would read as the agent's Host).
 * `name` and `value` are borrowed for as long as `req` is used.
 */
void guard_add_header(struct guard_request *req, const char *name, const char *value,
                      size_t value_len);

/* 1 if `host` is 127.0.0.1:PORT, localhost:PORT or [::1]:PORT. */
int guard_host_allowed(const struct guard_policy *policy, const char *host);

/* 1 if `origin` is the agent's own origin (https://127.0.0.1:PORT etc.). */
int guard_origin_is_self(const struct guard_policy *policy, const char *origin);

/* 1 if the request comes from one of the agent's own pages: its Origin is
 * the agent's, or (a same-origin GET carries no Origin) Sec-Fetch-Site says
 * same-origin. For the routes only those pages may use (the consent window). */
int guard_from_self(const struct guard_policy *policy, const struct guard_request *req);

/* 1 if `origin` is the agent's own origin or matches the allow-list. */
int guard_origin_allowed(const struct guard_policy *policy, const char *origin);

/*
 * Header syntax, Host, Origin and Fetch Metadata checks. Returns UKEY_OK, or
 * the error to answer with: INVALID_REQUEST (BAD_REQUEST) for a NUL in a
 * header value, a duplicated Host, Origin or Content-Length, or
 * Content-Length together with Transfer-Encoding (two framings of one body,
 * the request-smuggling shape); HOST_NOT_ALLOWED; ORIGIN_NOT_ALLOWED. *cors_origin is set to the origin to echo in CORS
 * headers, or NULL when no CORS headers may be sent.
 */
ukey_err guard_check(const struct guard_policy *policy, const struct guard_request *req,
                     const char **cors_origin);

/* 1 if `content_type` is application/json, with at most a charset=utf-8 parameter. */
int guard_content_type_json(const char *content_type);

#endif
