/*
 * Everything the diagnostics say about one certificate: validity, chain to
 * the trust anchors (fetching missing intermediates from AIA caIssuers),
 * whether its CRL is published, and whether it is revoked (CRL signed by
 * its issuer and fresh, and OCSP where the certificate names a responder).
 *
 * Fetches are bounded (x509/fetch.h), made once per URL per run, and
 * verified answers are kept on disk in the cache directory until their
 * nextUpdate, so a help-desk session that runs the checks again does not
 * wait on the network again.
 */
#ifndef UKEY_DIAG_CERTS_H
#define UKEY_DIAG_CERTS_H

#include <jansson.h>
#include <openssl/x509.h>
#include <time.h>

enum diag_status { DIAG_PASS, DIAG_WARN, DIAG_FAIL, DIAG_SKIP };

#define EXPIRY_WARN_DAYS 30 /* a certificate's, unless its deployment profile says otherwise (reminder_days) */

struct cert_env_options {
    const char *ca_file;        /* trust anchors (PEM/DER), or NULL */
    const char *ca_dir;         /* a directory of trust anchors, or NULL */
    const char *cache_dir;      /* where verified answers are kept, or NULL */
    long fetch_timeout_s;       /* 0: the default */
};

struct cert_env;

/* NULL only when out of memory. */
struct cert_env *cert_env_new(const struct cert_env_options *opt);
void cert_env_free(struct cert_env *env);
int cert_env_has_anchors(const struct cert_env *env);
/* The newest Date any server answered with during this run, 0 if none. */
time_t cert_env_server_date(const struct cert_env *env);

struct cert_look {
    enum diag_status validity, chain, published, revoked;
    json_t *evidence;           /* what was found, per step (owned) */
};

/* Looks at the DER certificate `der`; `intermediates` (may be NULL) are
 * extra certificates the caller has. Fill `out`; free out->evidence. */
void cert_look(struct cert_env *env, const unsigned char *der, size_t len, STACK_OF(X509) *intermediates,
               struct cert_look *out);

#endif
