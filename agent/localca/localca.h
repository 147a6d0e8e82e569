/*
 * The agent's own TLS identity (issue 2, security.md section 4):
 *   - a per-install ECDSA P-256 CA, basicConstraints CA:TRUE pathlen:0
 *     (critical), keyUsage keyCertSign+cRLSign, nameConstraints permitting
 *     only dNSName localhost and iPAddress 127.0.0.1/32 and ::1/128 (critical);
 *     its private key lives only in memory and is wiped right after the leaf
 *     is signed;
 *   - a leaf for localhost, 127.0.0.1 and ::1 (EKU serverAuth, at most 825
 *     days), whose key is the only private key written to disk (mode 0600).
 *
 * Files in the state directory: ca.crt (public), server.crt, server.key.
 */
#ifndef UKEY_LOCALCA_LOCALCA_H
#define UKEY_LOCALCA_LOCALCA_H

#include "localca/x509ext.h"

#include <stddef.h>
#include <time.h>

#define LOCALCA_CA_FILE "ca.crt"
#define LOCALCA_CERT_FILE "server.crt"
#define LOCALCA_KEY_FILE "server.key"
/* Leaf lifetime, under Apple's 825-day limit for every TLS certificate. */
#define LOCALCA_LEAF_DAYS 820
/* A leaf this close to its end is replaced, together with a new CA. */
#define LOCALCA_RENEW_DAYS 30

/* An in-memory CA: certificate and private key. */
struct localca_ca;

/* Creates a fresh CA valid from `now`; 0 on success, -1 with `err`. */
int localca_ca_create(time_t now, struct localca_ca **out, char *err, size_t errlen);

/*
 * Issues a leaf signed by `ca` for the given names with a new P-256 key.
 * On success *cert_pem and *key_pem are owned by the caller (free the key
 * with secret_free_str). Returns 0, or -1 with `err`.
 */
int localca_issue_leaf(const struct localca_ca *ca, time_t now, const char *const *dns,
                       size_t n_dns, const struct x509ext_ip *ips, size_t n_ips,
                       char **cert_pem, char **key_pem, char *err, size_t errlen);

/* The CA certificate as PEM (caller frees), NULL on allocation failure. */
char *localca_ca_pem(const struct localca_ca *ca);

/* Wipes the CA's private key and frees it; NULL is fine. */
void localca_ca_destroy(struct localca_ca *ca);

enum localca_result { LOCALCA_REUSED, LOCALCA_CREATED, LOCALCA_RENEWED };

/*
 * Makes sure `state_dir` (created 0700 if missing) holds a usable identity:
 * reuses it when ca.crt, server.crt and server.key are consistent and the
 * leaf is valid for more than LOCALCA_RENEW_DAYS; otherwise makes a new CA
 * and leaf (the CA key never touches the disk). Returns 0 and sets *result,
 * or -1 with `err`.
 */
int localca_ensure(const char *state_dir, time_t now, enum localca_result *result, char *err,
                   size_t errlen);

/* Reads server.crt's notAfter; 0 on success, -1 otherwise. */
int localca_leaf_not_after(const char *state_dir, time_t *not_after);

/* Lower-case hex SHA-256 of the DER certificate in PEM file `path` (65 bytes). */
int localca_fingerprint_file(const char *path, char out[65]);

#endif
