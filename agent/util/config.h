/*
 * The agent's configuration: defaults, agent.json, then command-line flags
 * (flags win). agent.json is strict: unknown keys and wrong types are errors
 * that name the file, line and key.
 *
 * agent.json (all keys optional):
 *   {
 *     "port": 27443,
 *     "probe_port": 27480,              // plain-HTTP GET /probe for the JS SDK
 *     "state_dir": "/path",            // default $XDG_DATA_HOME/ukey-agent (util/dirs.h)
 *     "webroot": "/path",               // default: the pages built into the binary
 *     "ca_file": "/path/anchors.pem",   // extra trust anchors for diagnostics
 *     "ca_dir": "/path/certs",          // a directory of them (default: the shipped certs/)
 *     "allow_origins": ["https://portal.example.gov.cn",   // or wildcard patterns, see origin.h
 *                       {"origin": "https://old.example.gov.cn", "pin_entry": "page"},
 *                       {"origin": "http://127.0.0.1:8088", "insecure_http": true}, // http:// known and accepted
 *                       {"origin": "https://old2.example.gov.cn", "legacy_sign": true}],
 *                                       // legacy_sign (boolean, default false): POST /api/v1/sign allowed for
 *                                       // this site; its signatures are not bound to the origin
 *     "pin_entry": "consent",           // or "page": where PINs are typed, for entries without their own
 *     "pkcs11_modules": ["/usr/lib/vendor/libukey-p11.so"],  // token vendors' PKCS#11 modules
 *     "skf_modules": ["/usr/lib/vendor/libukey-skf.so"],     // token vendors' SKF libraries (GM/T 0016)
 *     "profiles": ["/path/ca.json"],     // deployment profiles to load besides the directories' (profile/profile.h)
 *     "profile_dirs": ["/path/profiles"], // replaces the profile directories (packaged, /etc, ~/.config), even when []
 *     "log_level": "info",
 *     "reminders": true,                // desktop notifications of expiring certificates (notify/reminders.h);
 *                                       // false, or serve --no-reminders, turns them off
 *     "limits": {"max_connections": 256, "handshake_timeout_s": 10,
 *                "idle_timeout_s": 60, "max_body_bytes": 65536, "fetch_timeout_s": 15,
 *                "consent_timeout_s": 120, "consents_per_origin": 2,
 *                "pin_retry_delay_ms": 1000}   // pause after a wrong PIN/PUK, doubling; 0: none
 *   }
 */
#ifndef UKEY_UTIL_CONFIG_H
#define UKEY_UTIL_CONFIG_H

#include <jansson.h>
#include <stddef.h>

#define CONFIG_DEFAULT_PORT 27443
#define CONFIG_DEFAULT_PROBE_PORT 27480

/* Where a site's users type their PIN (issue 9). */
enum pin_entry {
    PIN_ENTRY_DEFAULT = 0,      /* an allow-list entry without its own: the config's pin_entry */
    PIN_ENTRY_CONSENT,          /* only in the agent's own consent window */
    PIN_ENTRY_PAGE,             /* the portal's page may send it (the plug-in era's flow) */
};

struct agent_config {
    unsigned port;
    unsigned probe_port;        /* the plain-HTTP probe (server/probe.h); 0: any free port */
    char *state_dir;
    char *webroot;
    char *ca_file;
    char *ca_dir;               /* NULL: UKEY_CERTS_DIR, the shipped anchors */
    char **allow_origins;
    enum pin_entry *origin_pin_entry; /* per allow_origins entry */
    unsigned char *origin_insecure_http; /* per entry: 1 if an http:// origin is accepted knowingly (no doctor warning) */
    unsigned char *origin_legacy_sign; /* per entry: 1 if the site may have data signed (POST /api/v1/sign) */
    size_t n_allow_origins;
    enum pin_entry pin_entry;   /* for entries without their own: CONSENT unless configured */
    char **pkcs11_modules;      /* paths of PKCS#11 modules to load (token/pkcs11.h) */
    size_t n_pkcs11_modules;
    char **skf_modules;         /* paths of SKF libraries to load (token/skf.h) */
    size_t n_skf_modules;
    char **profiles;            /* profile files ("profiles", --profile) */
    size_t n_profiles;
    char **profile_dirs;        /* "profile_dirs": replaces the default directories when profile_dirs_set */
    size_t n_profile_dirs;
    int profile_dirs_set;
    int log_level;
    unsigned max_connections;
    unsigned handshake_timeout_s;
    unsigned idle_timeout_s;
    size_t max_body_bytes;
    unsigned fetch_timeout_s;   /* each CRL, OCSP or issuer fetch */
    unsigned consent_timeout_s; /* a pending consent login */
    unsigned pin_retry_delay_ms; /* pacing after a wrong PIN or PUK (token/tokens.h) */
    unsigned consents_per_origin; /* live consent logins one origin may hold (api/consent.c) */
    int reminders;              /* renewal reminders as desktop notifications (default 1) */
};

/* Fills `cfg` with the built-in defaults (no allocation). */
void config_defaults(struct agent_config *cfg);

/*
 * Loads `path` into `cfg`, on top of what is there. When `path` is NULL the
 * default file ($XDG_CONFIG_HOME/ukey-agent/agent.json, else
 * ~/.config/ukey-agent/agent.json; %APPDATA%\ukey-agent\agent.json on
 * Windows: util/dirs.h) is read if it exists. Returns 0 on success,
 * -1 with a message in `err` (naming file, line and key) otherwise.
 */
int config_load(struct agent_config *cfg, const char *path, char *err, size_t errlen);

/* Adds an allow-list entry after checking its syntax; -1 with `err` if bad. */
int config_add_origin(struct agent_config *cfg, const char *origin, char *err, size_t errlen);

/* Adds a PKCS#11 module path (config file and --pkcs11-module); -1 with `err`. */
int config_add_pkcs11_module(struct agent_config *cfg, const char *path, char *err, size_t errlen);

/* Adds an SKF library path (config file and --skf-module); -1 with `err`. */
int config_add_skf_module(struct agent_config *cfg, const char *path, char *err, size_t errlen);

/* Adds a profile file (config file and --profile); -1 with `err`. */
int config_add_profile(struct agent_config *cfg, const char *path, char *err, size_t errlen);

/* Adds a profile directory ("profile_dirs"); -1 with `err`. */
int config_add_profile_dir(struct agent_config *cfg, const char *path, char *err, size_t errlen);

/*
 * The strict JSON machinery of agent.json, for other files of the same kind
 * (deployment profiles, profile/profile.h): errors name file, line and key.
 */
struct config_json {
    const char *path;
    const char *text;           /* the file's text, for the line of a key */
    char *err;
    size_t errlen;
};

/* Reads ld->path (`what`: "config file", "profile") and parses one JSON
 * object (duplicate keys refused); sets ld->text to *text, which the caller
 * frees (also on failure). NULL with ld->err on failure. */
json_t *config_json_open(struct config_json *ld, char **text, const char *what);

/* Writes "FILE:LINE: key \"KEY\": WHAT" to ld->err; returns -1. */
int config_json_fail(const struct config_json *ld, const char *key, const char *what);

/* An "allow_origins" array (strings or {"origin", "pin_entry", "insecure_http",
 * "legacy_sign"} objects) added to cfg's allow-list; -1 with ld->err. */
int config_json_origins(const struct config_json *ld, struct agent_config *cfg, const char *key, json_t *v);

/* Replaces a string member (state_dir, webroot, ca_file, ca_dir) with a copy of `value`. */
int config_set_string(char **member, const char *value);

/* Resolves cfg->state_dir to the default (util/dirs.h) when unset; -1 if
 * it cannot be known (no HOME). */
int config_resolve_state_dir(struct agent_config *cfg, char *err, size_t errlen);

/* Where `origin` (an allowed origin) must have its users type the PIN. */
enum pin_entry config_pin_entry_for(const struct agent_config *cfg, const char *origin);

/* 1 if an allow_origins entry matching `origin` has "legacy_sign": true. */
int config_legacy_sign_for(const struct agent_config *cfg, const char *origin);

/* The directory of trust anchors in effect. */
const char *config_ca_dir(const struct agent_config *cfg);

void config_free(struct agent_config *cfg);

#endif
