/* agent.json loading and validation; see config.h. */
#include "util/config.h"
#include "util/dirs.h"

#include "util/file.h"
#include "util/log.h"
#include "util/origin.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void config_defaults(struct agent_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->port = CONFIG_DEFAULT_PORT;
    cfg->probe_port = CONFIG_DEFAULT_PROBE_PORT;
    cfg->log_level = LOG_INFO;
    cfg->max_connections = 256;
    cfg->handshake_timeout_s = 10;
    cfg->idle_timeout_s = 60;
    cfg->max_body_bytes = 64 * 1024;
    cfg->fetch_timeout_s = 15;
    cfg->consent_timeout_s = 120;
    cfg->pin_retry_delay_ms = 1000;
    cfg->consents_per_origin = 2;
    cfg->pin_entry = PIN_ENTRY_CONSENT;
    cfg->reminders = 1;
}

int config_set_string(char **member, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return -1;
    free(*member);
    *member = copy;
    return 0;
}

/* Appends a copy of `value` to the list (*n entries); -1 with `err` when out of memory. */
static int push_string(char ***list, size_t *n, const char *value, char *err, size_t errlen)
{
    char **grown = realloc(*list, (*n + 1) * sizeof *grown);
    if (grown)
        *list = grown;
    if (!grown || !(grown[*n] = strdup(value))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    (*n)++;
    return 0;
}

int config_add_origin(struct agent_config *cfg, const char *origin, char *err, size_t errlen)
{
    enum pin_entry *entry;
    unsigned char *insecure, *legacy;
    if (!origin_pattern_valid(origin)) {
        char shown[128];
        log_sanitize(origin, shown, sizeof shown);
        snprintf(err, errlen,
                 "allowed origin \"%s\" is not valid: use scheme://host[:port] with no path "
                 "or trailing slash (e.g. https://portal.example.gov.cn), or https://*.domain",
                 shown);
        return -1;
    }
    /* The policy arrays grow first: they may then be one longer than the list, never shorter. */
    entry = realloc(cfg->origin_pin_entry, (cfg->n_allow_origins + 1) * sizeof *entry);
    if (entry)
        cfg->origin_pin_entry = entry;
    insecure = entry ? realloc(cfg->origin_insecure_http, cfg->n_allow_origins + 1) : NULL;
    if (insecure)
        cfg->origin_insecure_http = insecure;
    legacy = insecure ? realloc(cfg->origin_legacy_sign, cfg->n_allow_origins + 1) : NULL;
    if (!legacy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cfg->origin_legacy_sign = legacy;
    entry[cfg->n_allow_origins] = PIN_ENTRY_DEFAULT;
    insecure[cfg->n_allow_origins] = 0;
    legacy[cfg->n_allow_origins] = 0;
    return push_string(&cfg->allow_origins, &cfg->n_allow_origins, origin, err, errlen);
}

/* A library path (PKCS#11 module, SKF library) onto its list. */
static int push_library(char ***list, size_t *n, const char *what, const char *path, char *err, size_t errlen)
{
    if (!*path) {
        snprintf(err, errlen, "a %s path must not be empty", what);
        return -1;
    }
    return push_string(list, n, path, err, errlen);
}

int config_add_pkcs11_module(struct agent_config *cfg, const char *path, char *err, size_t errlen)
{
    return push_library(&cfg->pkcs11_modules, &cfg->n_pkcs11_modules, "PKCS#11 module", path, err, errlen);
}

int config_add_skf_module(struct agent_config *cfg, const char *path, char *err, size_t errlen)
{
    return push_library(&cfg->skf_modules, &cfg->n_skf_modules, "SKF library", path, err, errlen);
}

int config_add_profile(struct agent_config *cfg, const char *path, char *err, size_t errlen)
{
    return push_library(&cfg->profiles, &cfg->n_profiles, "profile", path, err, errlen);
}

int config_add_profile_dir(struct agent_config *cfg, const char *path, char *err, size_t errlen)
{
    return push_library(&cfg->profile_dirs, &cfg->n_profile_dirs, "profile directory", path, err, errlen);
}

/* "consent" or "page" -> the policy, else -1. */
static int pin_entry_parse(const json_t *v)
{
    const char *s = json_string_value(v);
    return !s ? -1 : strcmp(s, "consent") == 0 ? PIN_ENTRY_CONSENT : strcmp(s, "page") == 0 ? PIN_ENTRY_PAGE : -1;
}

enum pin_entry config_pin_entry_for(const struct agent_config *cfg, const char *origin)
{
    for (size_t i = 0; origin && i < cfg->n_allow_origins; i++)
        if (cfg->origin_pin_entry[i] != PIN_ENTRY_DEFAULT && origin_matches(cfg->allow_origins[i], origin))
            return cfg->origin_pin_entry[i];
    return cfg->pin_entry;
}

int config_legacy_sign_for(const struct agent_config *cfg, const char *origin)
{
    for (size_t i = 0; origin && i < cfg->n_allow_origins; i++)
        if (cfg->origin_legacy_sign[i] && origin_matches(cfg->allow_origins[i], origin))
            return 1;
    return 0;
}

/* Line (1-based) of the first `"key"` followed by ':' in `text`, 0 if unknown.
 * Jansson does not keep positions of members, so we look them up in the text. */
static int key_line(const char *text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = text; (p = strchr(p, '"')) != NULL; p++) {
        if (strncmp(p + 1, key, klen) == 0 && p[1 + klen] == '"') {
            const char *q = p + 2 + klen;
            while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
                q++;
            if (*q == ':') {
                int line = 1;
                for (const char *c = text; c < p; c++)
                    line += *c == '\n';
                return line;
            }
        }
    }
    return 0;
}

int config_json_fail(const struct config_json *ld, const char *key, const char *what)
{
    snprintf(ld->err, ld->errlen, "%s:%d: key \"%s\": %s", ld->path, key_line(ld->text, key),
             key, what);
    return -1;
}

static int get_uint(const struct config_json *ld, const char *key, json_t *v, unsigned long min,
                    unsigned long max, unsigned long *out)
{
    char what[96];
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
        json_integer_value(v) > (json_int_t)max) {
        snprintf(what, sizeof what, "must be an integer from %lu to %lu", min, max);
        return config_json_fail(ld, key, what);
    }
    *out = (unsigned long)json_integer_value(v);
    return 0;
}

static int get_path(const struct config_json *ld, const char *key, json_t *v, char **member)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        return config_json_fail(ld, key, "must be a non-empty string (a path)");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return config_json_fail(ld, key, "must not contain NUL characters");
    return config_set_string(member, json_string_value(v)) ? config_json_fail(ld, key, "out of memory") : 0;
}

static int load_limits(const struct config_json *ld, struct agent_config *cfg, json_t *limits)
{
    const char *key;
    json_t *v;
    unsigned long n = 0; /* set by get_uint() when it returns 0 (gcc -O3 cannot tell) */
    if (!json_is_object(limits))
        return config_json_fail(ld, "limits", "must be an object");
    json_object_foreach(limits, key, v) {
        if (strcmp(key, "max_connections") == 0) {
            if (get_uint(ld, key, v, 1, 4096, &n))
                return -1;
            cfg->max_connections = (unsigned)n;
        } else if (strcmp(key, "handshake_timeout_s") == 0) {
            if (get_uint(ld, key, v, 1, 600, &n))
                return -1;
            cfg->handshake_timeout_s = (unsigned)n;
        } else if (strcmp(key, "idle_timeout_s") == 0) {
            if (get_uint(ld, key, v, 1, 3600, &n))
                return -1;
            cfg->idle_timeout_s = (unsigned)n;
        } else if (strcmp(key, "max_body_bytes") == 0) {
            if (get_uint(ld, key, v, 1024, 16 * 1024 * 1024, &n))
                return -1;
            cfg->max_body_bytes = n;
        } else if (strcmp(key, "consent_timeout_s") == 0) {
            if (get_uint(ld, key, v, 1, 600, &n))
                return -1;
            cfg->consent_timeout_s = (unsigned)n;
        } else if (strcmp(key, "consents_per_origin") == 0) {
            if (get_uint(ld, key, v, 1, 16, &n))
                return -1;
            cfg->consents_per_origin = (unsigned)n;
        } else if (strcmp(key, "fetch_timeout_s") == 0) {
            if (get_uint(ld, key, v, 1, 120, &n))
                return -1;
            cfg->fetch_timeout_s = (unsigned)n;
        } else if (strcmp(key, "pin_retry_delay_ms") == 0) {
            if (get_uint(ld, key, v, 0, 60000, &n))
                return -1;
            cfg->pin_retry_delay_ms = (unsigned)n;
        } else {
            return config_json_fail(ld, key, "unknown key in \"limits\" (known: max_connections, "
                                     "handshake_timeout_s, idle_timeout_s, max_body_bytes, fetch_timeout_s, consent_timeout_s, "
                                     "pin_retry_delay_ms, consents_per_origin)");
        }
    }
    return 0;
}

/* "pkcs11_modules", "skf_modules", "profiles", "profile_dirs": an array of paths, each added with `add`. */
static int load_libraries(const struct config_json *ld, struct agent_config *cfg, const char *key, json_t *v, const char *what,
                          int (*add)(struct agent_config *cfg, const char *path, char *err, size_t errlen))
{
    size_t i;
    json_t *o;
    char why[256];
    if (!json_is_array(v))
        return config_json_fail(ld, key, "must be an array of paths");
    json_array_foreach(v, i, o) {
        if (!json_is_string(o) || strlen(json_string_value(o)) != json_string_length(o))
            return config_json_fail(ld, key, what);
        if (add(cfg, json_string_value(o), why, sizeof why))
            return config_json_fail(ld, key, why);
    }
    return 0;
}

int config_json_origins(const struct config_json *ld, struct agent_config *cfg, const char *key, json_t *v)
{
    size_t i;
    json_t *o;
    char why[256];
    if (!json_is_array(v))
        return config_json_fail(ld, key, "must be an array of origins");
    json_array_foreach(v, i, o) {
        /* "https://portal…", or {"origin": "https://portal…", "pin_entry": "page"?, "insecure_http": true?,
         * "legacy_sign": true?} */
        json_t *name = json_is_object(o) ? json_object_get(o, "origin") : o;
        json_t *entry = json_is_object(o) ? json_object_get(o, "pin_entry") : NULL;
        json_t *insecure = json_is_object(o) ? json_object_get(o, "insecure_http") : NULL;
        json_t *legacy = json_is_object(o) ? json_object_get(o, "legacy_sign") : NULL;
        int policy = entry ? pin_entry_parse(entry) : PIN_ENTRY_DEFAULT;
        if (!json_is_string(name) ||
            (json_is_object(o) && json_object_size(o) != 1u + (entry != NULL) + (insecure != NULL) + (legacy != NULL)))
            return config_json_fail(ld, key, "every entry is an origin string or {\"origin\": …, \"pin_entry\": …, "
                                             "\"insecure_http\": …, \"legacy_sign\": …}");
        if (policy < 0)
            return config_json_fail(ld, key, "\"pin_entry\" must be \"consent\" or \"page\"");
        if (insecure && (!json_is_boolean(insecure) || strncmp(json_string_value(name), "http://", 7) != 0))
            return config_json_fail(ld, key, "\"insecure_http\" is true or false, and only for an http:// origin");
        if (legacy && !json_is_boolean(legacy))
            return config_json_fail(ld, key, "\"legacy_sign\" is true or false");
        if (config_add_origin(cfg, json_string_value(name), why, sizeof why))
            return config_json_fail(ld, key, why);
        cfg->origin_pin_entry[cfg->n_allow_origins - 1] = (enum pin_entry)policy;
        cfg->origin_insecure_http[cfg->n_allow_origins - 1] = json_is_true(insecure);
        cfg->origin_legacy_sign[cfg->n_allow_origins - 1] = json_is_true(legacy);
    }
    return 0;
}

static int load_object(const struct config_json *ld, struct agent_config *cfg, json_t *root)
{
    const char *key;
    json_t *v;
    unsigned long n = 0; /* set by get_uint() when it returns 0 (gcc -O3 cannot tell) */
    json_object_foreach(root, key, v) {
        if (strcmp(key, "port") == 0) {
            if (get_uint(ld, key, v, 1, 65535, &n))
                return -1;
            cfg->port = (unsigned)n;
        } else if (strcmp(key, "probe_port") == 0) {
            if (get_uint(ld, key, v, 0, 65535, &n))
                return -1;
            cfg->probe_port = (unsigned)n;
        } else if (strcmp(key, "state_dir") == 0) {
            if (get_path(ld, key, v, &cfg->state_dir))
                return -1;
        } else if (strcmp(key, "webroot") == 0) {
            if (get_path(ld, key, v, &cfg->webroot))
                return -1;
        } else if (strcmp(key, "ca_file") == 0) {
            if (get_path(ld, key, v, &cfg->ca_file))
                return -1;
        } else if (strcmp(key, "ca_dir") == 0) {
            if (get_path(ld, key, v, &cfg->ca_dir))
                return -1;
        } else if (strcmp(key, "log_level") == 0) {
            int level = json_is_string(v) ? log_level_parse(json_string_value(v)) : -1;
            if (level < 0)
                return config_json_fail(ld, key, "must be one of \"error\", \"warn\", \"info\", \"debug\"");
            cfg->log_level = level;
        } else if (strcmp(key, "allow_origins") == 0) {
            if (config_json_origins(ld, cfg, key, v))
                return -1;
        } else if (strcmp(key, "profiles") == 0) {
            if (load_libraries(ld, cfg, key, v, "every entry is the path of a profile file (.json)", config_add_profile))
                return -1;
        } else if (strcmp(key, "profile_dirs") == 0) {
            cfg->profile_dirs_set = 1;
            if (load_libraries(ld, cfg, key, v, "every entry is the path of a directory of profiles", config_add_profile_dir))
                return -1;
        } else if (strcmp(key, "pkcs11_modules") == 0) {
            if (load_libraries(ld, cfg, key, v, "every entry is the path of a PKCS#11 module (.so)",
                               config_add_pkcs11_module))
                return -1;
        } else if (strcmp(key, "skf_modules") == 0) {
            if (load_libraries(ld, cfg, key, v, "every entry is the path of an SKF library (.so)",
                               config_add_skf_module))
                return -1;
        } else if (strcmp(key, "pin_entry") == 0) {
            int policy = pin_entry_parse(v);
            if (policy < 0)
                return config_json_fail(ld, key, "must be \"consent\" (the agent's window) or \"page\" (the portal's page)");
            cfg->pin_entry = (enum pin_entry)policy;
        } else if (strcmp(key, "limits") == 0) {
            if (load_limits(ld, cfg, v))
                return -1;
        } else if (strcmp(key, "reminders") == 0) {
            if (!json_is_boolean(v))
                return config_json_fail(ld, key, "must be true or false");
            cfg->reminders = json_is_true(v);
        } else {
            return config_json_fail(ld, key, "unknown key (known: port, probe_port, state_dir, webroot, ca_file, ca_dir, pin_entry, "
                                     "allow_origins, pkcs11_modules, skf_modules, profiles, profile_dirs, log_level, reminders, limits)");
        }
    }
    return 0;
}

static char *default_config_path(void)
{
    char *dir = dirs_get(DIRS_USER_CONFIG), *path = NULL;
    if (dir && asprintf(&path, "%s/agent.json", dir) < 0)
        path = NULL;
    free(dir);
    return path;
}

json_t *config_json_open(struct config_json *ld, char **text, const char *what)
{
    json_t *root;
    json_error_t jerr;
    *text = file_read_all(ld->path, 1024 * 1024, NULL);
    if (!*text) {
        snprintf(ld->err, ld->errlen, "%s: cannot read %s: %s", ld->path, what, strerror(errno));
        return NULL;
    }
    ld->text = *text;
    root = json_loads(*text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(ld->err, ld->errlen, "%s:%d:%d: invalid JSON: %s", ld->path, jerr.line, jerr.column, jerr.text);
    } else if (!json_is_object(root)) {
        snprintf(ld->err, ld->errlen, "%s:1: the %s must hold one JSON object", ld->path, what);
        json_decref(root);
        root = NULL;
    }
    return root;
}

int config_load(struct agent_config *cfg, const char *path, char *err, size_t errlen)
{
    char *owned = NULL, *text = NULL;
    struct config_json ld = {path, NULL, err, errlen};
    json_t *root;
    int rc = -1;

    if (!path) {
        owned = default_config_path();
        if (!owned || !file_exists(owned)) {
            free(owned);
            return 0; /* no config file: defaults */
        }
        ld.path = owned;
    }
    if ((root = config_json_open(&ld, &text, "config file")) != NULL)
        rc = load_object(&ld, cfg, root);
    json_decref(root);
    free(text);
    free(owned);
    return rc;
}

int config_resolve_state_dir(struct agent_config *cfg, char *err, size_t errlen)
{
    if (cfg->state_dir)
        return 0;
    if (!(cfg->state_dir = dirs_get(DIRS_USER_STATE))) {
        snprintf(err, errlen, "cannot find a state directory: set HOME or XDG_DATA_HOME (on Windows LOCALAPPDATA), "
                              "or pass --state-dir");
        return -1;
    }
    return 0;
}

const char *config_ca_dir(const struct agent_config *cfg)
{
    return cfg->ca_dir ? cfg->ca_dir : dirs_certs();
}

void config_free(struct agent_config *cfg)
{
    free(cfg->state_dir);
    free(cfg->webroot);
    free(cfg->ca_file);
    free(cfg->ca_dir);
    for (size_t i = 0; i < cfg->n_allow_origins; i++)
        free(cfg->allow_origins[i]);
    free(cfg->allow_origins);
    free(cfg->origin_pin_entry);
    free(cfg->origin_insecure_http);
    free(cfg->origin_legacy_sign);
    for (size_t i = 0; i < cfg->n_pkcs11_modules; i++)
        free(cfg->pkcs11_modules[i]);
    free(cfg->pkcs11_modules);
    for (size_t i = 0; i < cfg->n_skf_modules; i++)
        free(cfg->skf_modules[i]);
    free(cfg->skf_modules);
    for (size_t i = 0; i < cfg->n_profiles; i++)
        free(cfg->profiles[i]);
    free(cfg->profiles);
    for (size_t i = 0; i < cfg->n_profile_dirs; i++)
        free(cfg->profile_dirs[i]);
    free(cfg->profile_dirs);
    memset(cfg, 0, sizeof *cfg);
}
