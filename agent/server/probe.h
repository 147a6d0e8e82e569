/*
 * The plain-HTTP probe on 127.0.0.1 (default port 27480): `GET /probe`
 * and nothing else. It lets the JS SDK tell "the agent is not installed"
 * from "the agent runs but this browser does not trust its certificate",
 * which HTTPS alone cannot (both are a failed fetch). It says the name,
 * the version, the HTTPS port and the local CA's fingerprint: nothing a
 * page could use, and only to allowed origins, after the same Host check.
 */
#ifndef UKEY_SERVER_PROBE_H
#define UKEY_SERVER_PROBE_H

#include "server/guard.h"

#include <stddef.h>

#define PROBE_DEFAULT_PORT 27480

struct probe_server;

/* Listens on 127.0.0.1:port (0: any free port) with a thread of its own.
 * `origins` is the allow-list (borrowed, must outlive the probe). NULL with
 * `err` when the port cannot be bound. */
struct probe_server *probe_start(unsigned port, unsigned https_port, const char *state_dir,
                                 char *const *origins, size_t n_origins, char *err, size_t errlen);

unsigned probe_port(const struct probe_server *p);

void probe_stop(struct probe_server *p);

#endif
