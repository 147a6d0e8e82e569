/*
 * What an API handler sees and returns. Handlers never touch libmicrohttpd:
 * the HTTP layer (server/http.c) has already run the guard, parsed the JSON
 * body, and writes the response or the error envelope from what they return.
 */
#ifndef UKEY_API_API_H
#define UKEY_API_API_H

#include "util/config.h"
#include "util/error.h"

#include <jansson.h>
#include <time.h>

/* Process-wide facts handlers may read (set up by serve, read-only after). */
struct agent_ctx {
    const struct agent_config *cfg;
    unsigned port;          /* the port actually bound */
    time_t started;
};

struct api_request {
    const struct agent_ctx *agent;
    const char *method;
    const char *path;
    const char *origin;     /* the request's allowed Origin, NULL if none */
    const char *param;      /* the {id} path segment, if the route has one */
    json_t *body;           /* the JSON object of a POST, else NULL (borrowed) */
    /* A query-string argument or a request header, NULL if absent. */
    const char *(*query)(const struct api_request *req, const char *key);
    const char *(*header)(const struct api_request *req, const char *key);
    void *http;             /* the HTTP layer's own handle, opaque here */
};

struct api_reply {
    json_t *json;           /* response body on success (owned by the reply) */
    unsigned status;        /* 0 = 200 */
    json_t *error_extra;    /* extra members for the error envelope, e.g. retries_left */
};

typedef ukey_err (*api_handler)(const struct api_request *req, struct api_reply *reply);

ukey_err api_status(const struct api_request *req, struct api_reply *reply);
ukey_err api_tokens(const struct api_request *req, struct api_reply *reply);
ukey_err api_pin_verify(const struct api_request *req, struct api_reply *reply);
ukey_err api_pin_change(const struct api_request *req, struct api_reply *reply);
ukey_err api_pin_unblock(const struct api_request *req, struct api_reply *reply);
ukey_err api_login(const struct api_request *req, struct api_reply *reply);
ukey_err api_diagnostics(const struct api_request *req, struct api_reply *reply);
ukey_err api_certificates_check(const struct api_request *req, struct api_reply *reply);
ukey_err api_profiles(const struct api_request *req, struct api_reply *reply);

ukey_err api_sign(const struct api_request *req, struct api_reply *reply);

/* Logins and data signatures confirmed in the agent's own window
 * (consent.c; consent_create in api/signing.h). */
ukey_err api_login_result(const struct api_request *req, struct api_reply *reply);
ukey_err api_sign_result(const struct api_request *req, struct api_reply *reply);
ukey_err api_login_withdraw(const struct api_request *req, struct api_reply *reply);
ukey_err api_sign_withdraw(const struct api_request *req, struct api_reply *reply);
ukey_err api_consent_info(const struct api_request *req, struct api_reply *reply);
ukey_err api_consent_submit(const struct api_request *req, struct api_reply *reply);
ukey_err api_consent_cancel(const struct api_request *req, struct api_reply *reply);
void consent_forget(void);

/* The error envelope's extra members after a PIN operation on token
 * `token_id` (NULL: the first one) with certificate `cert_id` (NULL: the
 * authentication one): retries_left and blocked, when the card said how many
 * tries are left, and "help" of the certificate's deployment profile for a
 * blocked PIN/PUK and the like (profile/profile.h); else NULL. */
struct token_pin;
json_t *api_pin_error_extra(const struct api_request *req, ukey_err e, const struct token_pin *pin,
                            const char *token_id, const char *cert_id);

/* 1 if the request comes from the agent's own origin. */
int api_origin_is_self(const struct api_request *req);
/* 1 if this request may carry a PIN: no Origin (a local program), the
 * agent's own pages, or a site whose pin_entry is "page". */
int api_pin_from_page_allowed(const struct api_request *req);

#endif
