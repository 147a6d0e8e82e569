/*
 * The diagnostics (issue 5): every item of the old login FAQ as a check with
 * a verdict, the evidence and the fix, in zh-CN and en. Used by
 * GET /api/v1/diagnostics and `ukey-agent doctor`.
 *
 * Each check: {"id", "status": "pass|warn|fail|skip", "title", "detail",
 * "fix", "evidence": {...}} in the language asked for.
 */
#ifndef UKEY_DIAG_CHECKS_H
#define UKEY_DIAG_CHECKS_H

#include "util/config.h"

#include <jansson.h>
#include <openssl/x509.h>

enum diag_lang { DIAG_ZH, DIAG_EN };

struct diag_options {
    enum diag_lang lang;
    const char *min_version;    /* a portal's minimum agent version, or NULL */
    const char *state_dir;      /* where the agent's CA and leaf are */
    const char *ca_file;        /* trust anchors for certificate chains, or NULL */
    const char *ca_dir;         /* a directory of trust anchors, or NULL */
    const char *cache_dir;      /* where verified CRL/OCSP answers are kept, or NULL */
    long fetch_timeout_s;       /* per CRL/OCSP/issuer fetch; 0: the default */
    int mask_names;             /* mask people's and companies' names and the home directory (for a report sent out) */
    int owner;                  /* for the agent's own page, a local program or doctor: the allow-list
                                 * (origins.http) and unmasked paths; else paths always show "~" for the home */
    const struct agent_config *cfg; /* the allow-list for origins.http */
};

/* Fills state_dir, ca_file, ca_dir, cache_dir, fetch_timeout_s and cfg from
 * the agent's configuration (whose state_dir is resolved); the rest stays. */
void diag_options_from_config(struct diag_options *opt, const struct agent_config *cfg);

/* Runs every check; returns {"checks": [...], "summary": {"pass": n, ...}}
 * (caller frees), failures first. NULL only when out of memory. */
json_t *diag_run(const struct diag_options *opt);

/* The certificate checks (cert.validity, cert.chain, cert.crl.published,
 * cert.revoked, system.clock) on one DER certificate, with `intermediates`
 * (may be NULL) to help build its chain. The report also carries
 * "certificate": its description. NULL when out of memory or when `der`
 * is not a certificate. */
json_t *diag_check_certificate(const struct diag_options *opt, const unsigned char *der, size_t len,
                               STACK_OF(X509) *intermediates);

/* -1, 0, 1 as the dotted version a is older than, equal to, newer than b. */
int diag_version_cmp(const char *a, const char *b);

/* "zh-CN" unless `accept_language` (an Accept-Language value or a ?lang=)
 * prefers English. */
enum diag_lang diag_lang_from(const char *value);

#endif
