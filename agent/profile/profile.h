/*
 * Deployment profiles (issue 18): one JSON file per CA or portal operator
 * with its names, hotline, service-point page, self-service links (renew,
 * unlock, change details, download), trust anchors, allowed origins, the
 * agent version it needs, and which issuers' certificates it covers.
 * docs/PROFILES.md describes the format; the parser is as strict as
 * agent.json's (util/config.h): errors name file, line and key.
 *
 * Profiles are loaded once at start (profiles_load), in this order: the
 * packaged directory (UKEY_PROFILES_DIR), /etc/ukey-agent/profiles,
 * $XDG_CONFIG_HOME/ukey-agent/profiles (on Windows <exe dir>\profiles,
 * %ProgramData%\ukey-agent\profiles, %APPDATA%\ukey-agent\profiles:
 * util/dirs.h; or "profile_dirs" instead of the three), then the files of "profiles" and --profile. The loaded set is
 * process-wide and read-only afterwards, so any thread may query it.
 */
#ifndef UKEY_PROFILE_PROFILE_H
#define UKEY_PROFILE_PROFILE_H

#include "diag/certs.h"
#include "diag/checks.h"
#include "util/config.h"

#include <jansson.h>
#include <openssl/x509.h>
#include <time.h>

#define PROFILE_DEFAULT_REMINDER_DAYS EXPIRY_WARN_DAYS

struct profile;

struct profile_help {
    const char *name_zh, *name_en, *phone, *url; /* any may be NULL */
};

/* url: the topic's link, else service_points_url; phone: the hotline. */
enum help_topic { HELP_RENEW, HELP_UNLOCK, HELP_CHANGE_DETAILS, HELP_SERVICE };

/*
 * Loads the profiles `cfg` names (see above) and merges their allow_origins
 * into cfg. Returns 0, or -1 with a message naming file, line and key in
 * `err` (a bad file, or an id that two files use). Replaces a set loaded
 * before.
 */
int profiles_load(struct agent_config *cfg, char *err, size_t errlen);

/* Checks one profile file as profiles_load would (`ukey-agent profile
 * check`); 0, or -1 with `err`. */
int profile_check_file(const char *path, char *err, size_t errlen);

/* Drops the loaded set. */
void profiles_free(void);

/* The loaded profile `cert` belongs to (issuer DN or authority key id), or NULL. */
const struct profile *profiles_for_cert(X509 *cert);
const char *profile_id(const struct profile *p);

/* The help for `topic` about `cert`: 0, or -1 when no profile applies. */
int profiles_help(X509 *cert, enum help_topic topic, struct profile_help *out);

/* The reminder window of `cert`'s profile, else PROFILE_DEFAULT_REMINDER_DAYS. */
unsigned profiles_reminder_days(X509 *cert);

/* {"name", "phone", "url"} with the members that are known (name in `lang`). */
json_t *profile_help_json(const struct profile_help *h, enum diag_lang lang);

/* Adds "profile": id and, within the reminder window (or expired),
 * "reminder": {"days_left", "window_days", "renew_url"?} to a certificate's
 * listing `c` (x509/cert.h) of the DER `der`, as of `now`. */
void profiles_annotate_cert(json_t *c, const unsigned char *der, size_t len, time_t now);

/* The strictest min_agent_version of the loaded profiles, or NULL. */
const char *profiles_min_version(void);

/* Adds the profiles' trust anchors to `sk` (references). */
void profiles_add_anchors(STACK_OF(X509) *sk);

/* GET /api/v1/profiles: {"profiles": [{"id", "name": {"zh-CN", "en"}, "hotline"?,
 * "service_points_url"?, "links": {…}, "reminder_days", "min_agent_version"?, "file"?}]}
 * ("file" only with `with_paths`). NULL when out of memory. */
json_t *profiles_json(int with_paths);

#endif
