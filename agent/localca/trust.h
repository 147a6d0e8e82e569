/*
 * Trust installation for the agent's local CA (security.md 4.3, TLS-05,
 * TLS-07): on Linux the user's NSS databases (Chromium's ~/.pki/nssdb, snap
 * Chromium, every Firefox profile with a cert9.db; trust "C,," = TLS
 * servers only) and, as root, the system store; on Windows the user's ROOT
 * certificate store and Firefox's enterprise-roots policy, and as
 * administrator the machine's. CAs go in as "ukey-agent local CA <16 hex of
 * SHA-256>"; the stores installed into are recorded in state_dir/trust.json.
 * trust_common.c implements this over trust_store.h's platform stores.
 */
#ifndef UKEY_LOCALCA_TRUST_H
#define UKEY_LOCALCA_TRUST_H

#include <jansson.h>
#include <stdio.h>

/* Installs state_dir/ca.crt in every store found (creating Chromium's NSS
 * database if missing), replacing older ukey-agent CAs; the system
 * (machine's) stores too when `with_system`. Reports a line per store to
 * `out` ("installed", "skipped" with why, "FAILED" with why). 0 if no
 * store failed, else -1. */
int trust_install(const char *state_dir, int with_system, FILE *out);

/* Removes every ukey-agent CA (this install's and earlier ones) from every
 * store found, the system (machine's) stores too when `with_system`. 0 or -1. */
int trust_uninstall(const char *state_dir, int with_system, FILE *out);

/* Says which stores hold the current CA (and older ones), as a table or
 * (`json`) one JSON object. 0 if the current CA is in every store (the
 * system's and the other optional ones count when installed into), 1 if
 * missing somewhere, -1 on error. */
int trust_status(const char *state_dir, int json, FILE *out);

/* After a renewal: installs the new CA wherever trust.json says the old one
 * was. Does nothing without a manifest. 0 or -1 (logged). */
int trust_refresh(const char *state_dir);

/* The per-store facts of trust_status's "stores" array, as a new array
 * (caller frees), for the diagnostics; NULL when ca.crt is unreadable. */
json_t *trust_stores_json(const char *state_dir);

#endif
