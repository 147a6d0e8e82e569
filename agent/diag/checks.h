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

#include <jansson.h>

enum diag_lang { DIAG_ZH, DIAG_EN };

struct diag_options {
    enum diag_lang lang;
    const char *min_version;    /* a portal's minimum agent version, or NULL */
    const char *state_dir;      /* where the agent's CA and leaf are */
    const char *ca_file;        /* trust anchors for certificate chains, or NULL */
};

/* Runs every check; returns {"checks": [...], "summary": {"pass": n, ...}}
 * (caller frees), failures first. NULL only when out of memory. */
json_t *diag_run(const struct diag_options *opt);

/* "zh-CN" unless `accept_language` (an Accept-Language value or a ?lang=)
 * prefers English. */
enum diag_lang diag_lang_from(const char *value);

#endif
