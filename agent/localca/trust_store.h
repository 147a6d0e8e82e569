/*
 * The platform side of trust.h. trust_common.c does what every platform
 * shares (the CA's facts, trust.json, the install / uninstall / refresh /
 * status loops and their output); each platform's stores live in one file
 * implementing the four calls below: trust.c (NSS databases and the system
 * store, Linux) and trust_win.c (the Windows certificate stores and
 * Firefox's enterprise-roots policy).
 */
#ifndef UKEY_LOCALCA_TRUST_STORE_H
#define UKEY_LOCALCA_TRUST_STORE_H

#include <stddef.h>

/* Every CA goes in under this name + the first 16 hex of its SHA-256. */
#define TRUST_NICK_PREFIX "ukey-agent local CA "
#define TRUST_MAX_STORES 64

/* The current CA: its file, fingerprint and name in the stores. */
struct trust_ca {
    char path[4200];     /* state_dir/ca.crt */
    char fp[65];         /* lower-case hex SHA-256 of the DER */
    char nick[64];       /* TRUST_NICK_PREFIX "<16 hex>" */
};

struct trust_store {
    char kind[16];       /* "nss", "system"; "certstore", "firefox-policy" */
    char name[160];      /* "Chromium", "Windows (current user)" */
    char path[4200];     /* "sql:/home/u/.pki/nssdb", "HKCU\\...\\Root" */
    int optional;        /* counts as lacking the CA only when trust.json records it */
    int recorded;        /* trust.json records it (set by trust_common.c) */
};

/*
 * Lists this user's stores into `stores` (TRUST_MAX_STORES entries):
 * `create` makes a missing store a browser would read (Chromium's NSS
 * database), `with_system` adds the machine-wide ones. Returns the count.
 */
size_t truststore_find(struct trust_store *stores, int create, int with_system, const struct trust_ca *ca);

/*
 * Puts `ca` into `s` and removes older ukey-agent CAs there; may rename
 * s->path (the system store's file is named after the CA). Returns 0, 1
 * when the store was left alone on purpose (the reason in `err`; not an
 * error, and not recorded in trust.json), or -1 with `err`.
 */
int truststore_install(struct trust_store *s, const struct trust_ca *ca, char *err, size_t errlen);

/* Removes every ukey-agent CA (any install's) from `s`. Returns how many
 * were removed, or -1 with `err`. */
int truststore_remove(const struct trust_store *s, char *err, size_t errlen);

/* Sets *current when `s` holds `ca`; returns how many older ukey-agent CAs
 * it holds, or -1 with `err` (*current is 0 then). */
int truststore_probe(const struct trust_store *s, const struct trust_ca *ca, int *current, char *err,
                     size_t errlen);

#endif
