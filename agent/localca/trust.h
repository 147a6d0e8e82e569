/*
 * Trust installation for the agent's local CA (security.md 4.3, TLS-05,
 * TLS-07): the user's NSS databases (Chromium's ~/.pki/nssdb, snap
 * Chromium, every Firefox profile with a cert9.db) and, as root, the system
 * store. CAs go in as "ukey-agent local CA <16 hex of SHA-256>" with trust
 * "C,," (TLS servers only); the stores installed into are recorded in
 * state_dir/trust.json.
 */
#ifndef UKEY_LOCALCA_TRUST_H
#define UKEY_LOCALCA_TRUST_H

#include <jansson.h>
#include <stdio.h>

/* Installs state_dir/ca.crt in every store found (creating Chromium's NSS
 * database if missing), replacing older ukey-agent CAs; the system store
 * too when `with_system`. Reports a line per store to `out`. 0 if every
 * store succeeded, else -1. */
int trust_install(const char *state_dir, int with_system, FILE *out);

/* Removes every ukey-agent CA (this install's and earlier ones) from every
 * store found, and the system store's files when `with_system`. 0 or -1. */
int trust_uninstall(const char *state_dir, int with_system, FILE *out);

/* Says which stores hold the current CA (and older ones), as a table or
 * (`json`) one JSON object. 0 if the current CA is in every store (the
 * system store counts when it was installed into), 1 if missing somewhere,
 * -1 on error. */
int trust_status(const char *state_dir, int json, FILE *out);

/* After a renewal: installs the new CA wherever trust.json says the old one
 * was. Does nothing without a manifest. 0 or -1 (logged). */
int trust_refresh(const char *state_dir);

/* The per-store facts of trust_status's "stores" array, as a new array
 * (caller frees), for the diagnostics; NULL when ca.crt is unreadable. */
json_t *trust_stores_json(const char *state_dir);

#endif
