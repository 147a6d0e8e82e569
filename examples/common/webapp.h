/*
 * What the example portals (examples/portal, examples/legacy-portal) share:
 * randomness, the session table behind the HttpOnly SameSite=Strict cookie
 * "portal_session", files and answers, request bodies, the HTTP loop on
 * 127.0.0.1 (libmicrohttpd). One table per process.
 */
#ifndef UKEY_EXAMPLES_WEBAPP_H
#define UKEY_EXAMPLES_WEBAPP_H

#include <microhttpd.h>
#include <stddef.h>
#include <time.h>

#define WEBAPP_CHALLENGE_TTL_S 300
#define WEBAPP_MAX_BODY 32768

struct session {
    char id[65];                /* hex of 32 random bytes; "" when free */
    time_t expires;
    char challenge[64];         /* Base64 of 32 bytes; "" once used */
    time_t challenge_expires;
    char subject[512], serial[80], algorithm[8];
};

/* Base64 (with padding) of `bytes` (at most 48) random bytes. */
void webapp_random_base64(char *out, size_t bytes);

/* The session table: lock it around find/new and the use of a session. */
void webapp_lock(void);
void webapp_unlock(void);
/* The session named by the request's cookie, or NULL. */
struct session *webapp_find_session(struct MHD_Connection *c);
/* A new session: a free or expired slot, else the oldest. */
struct session *webapp_new_session(void);
/* A fresh single-use challenge in the request's session (made when it has
 * none: then *cookie gets its id for webapp_send, else ""). */
void webapp_new_challenge(struct MHD_Connection *c, char challenge[64], char cookie[65]);
/* The session's challenge if unused and fresh, used up whatever the
 * outcome: 0, or -1 (none; challenge = ""). */
int webapp_take_challenge(struct MHD_Connection *c, char challenge[64]);

/* A file of at most 1 MiB, NUL-terminated (malloc'd), or NULL. */
char *webapp_read_file(const char *path, size_t *len);
/* The file `url` names under `www` ("/" is /index.html; /sdk/... under
 * `sdk`) if its type is served (.html, .js, .css): its MIME type and
 * path, 0; or -1. */
int webapp_static_path(const char *url, const char *www, const char *sdk, char *path, size_t cap, const char **type);
/* Answers `body` (malloc'd, taken over) with no-store, nosniff, the CSP if
 * not NULL, and the session cookie if `cookie` is not NULL or "". */
enum MHD_Result webapp_send(struct MHD_Connection *c, unsigned status, char *body, size_t len, const char *type,
                            const char *csp, const char *cookie);

/* A portal's answer to one request, once its body (up to WEBAPP_MAX_BODY;
 * `too_big` when it was longer, then `body` holds none of it) is all there. */
typedef enum MHD_Result (*webapp_handler)(struct MHD_Connection *c, const char *url, const char *method,
                                          const char *body, size_t len, int too_big);

/* A portal's command line: --ca-file (repeatable, at least one), --crl
 * (repeatable) | --crl-fetch, --port, --www, --agent, --help, and with
 * `portal_options` also --origin and --probe. */
struct webapp_options {
    struct ukey_verifier *verifier; /* made by webapp_options, the caller frees it */
    const char *www, *sdk, *agent, *origin, *probe;
    unsigned port;
};
/* Parses argv into *o (its fields hold the defaults): -1 to go on, or the
 * exit status (0 after --help, 1 for an unreadable file, 2 for a usage
 * error: `usage` is printed). */
int webapp_options(const char *name, const char *usage, int argc, char **argv, int portal_options,
                   struct webapp_options *o);

/* Serves on 127.0.0.1:port until SIGINT/SIGTERM: 0, or 1 if it cannot listen.
 * Once the socket listens it writes "NAME: listening on http://127.0.0.1:PORT
 * (ABOUT)" to stderr, the line scripts and tests wait for. */
int webapp_run(const char *name, unsigned port, webapp_handler handler, const char *about);

#endif
