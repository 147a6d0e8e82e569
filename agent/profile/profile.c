/* Deployment profiles: parsing, loading and the questions asked of them; see profile.h. */
#include "profile/profile.h"

#include "util/clock.h"
#include "util/dirs.h"
#include "util/file.h"
#include "util/log.h"
#include "x509/crt.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

DEFINE_STACK_OF(ASN1_OCTET_STRING)

enum { LINK_RENEW, LINK_UNLOCK, LINK_CHANGE_DETAILS, LINK_DOWNLOAD, N_LINKS };
static const char *const link_names[N_LINKS] = {"renew", "unlock", "change_details", "download"};

struct profile {
    char *path;
    char *id, *name_zh, *name_en, *hotline, *service_points_url, *min_version;
    char *links[N_LINKS];
    STACK_OF(X509) *anchors;
    STACK_OF(X509_NAME) *issuer_names;
    STACK_OF(ASN1_OCTET_STRING) *key_ids;
    unsigned reminder_days;
};

/* The loaded set (profiles_load); read-only once serving. */
static struct profile **loaded;
static size_t n_loaded;

static void profile_free(struct profile *p)
{
    if (!p)
        return;
    free(p->path);
    free(p->id);
    free(p->name_zh);
    free(p->name_en);
    free(p->hotline);
    free(p->service_points_url);
    free(p->min_version);
    for (int i = 0; i < N_LINKS; i++)
        free(p->links[i]);
    sk_X509_pop_free(p->anchors, X509_free);
    sk_X509_NAME_pop_free(p->issuer_names, X509_NAME_free);
    sk_ASN1_OCTET_STRING_pop_free(p->key_ids, ASN1_OCTET_STRING_free);
    free(p);
}

/* A string member: non-empty, no NUL, at most `max` bytes; copied into *out. */
static int get_string(const struct config_json *ld, const char *key, json_t *v, size_t max, char **out)
{
    char what[96];
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(what, sizeof what, "must be a non-empty string of at most %zu bytes", max);
        return config_json_fail(ld, key, what);
    }
    free(*out);
    if (!(*out = strdup(json_string_value(v))))
        return config_json_fail(ld, key, "out of memory");
    return 0;
}

/* [a-z0-9][a-z0-9-]{0,31} */
static int id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 32 || *s == '-')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
            return 0;
    return 1;
}

/* Digits, spaces, + - ( ), 3 to 32 characters. */
static int phone_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 32)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || strchr(" +-()", *s)))
            return 0;
    return 1;
}

/* https://HOST[...], or http:// on loopback only (127.0.0.1, localhost, [::1]);
 * no spaces or control characters. */
static int url_ok(const char *s)
{
    static const char *const loopback[] = {"127.0.0.1", "localhost", "[::1]"};
    const char *host;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c <= 0x20 || *c == 0x7f || *c == '"' || *c == '<' || *c == '>' || *c == '\\')
            return 0;
    if (strncmp(s, "https://", 8) == 0) {
        host = s + 8;
        return *host && *host != '/' && *host != ':' && *host != '?' && *host != '#';
    }
    if (strncmp(s, "http://", 7) != 0)
        return 0;
    host = s + 7;
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
        size_t n = strlen(loopback[i]);
        if (strncmp(host, loopback[i], n) == 0 && strchr(":/?#", host[n]) != NULL)
            return 1; /* strchr also finds the terminating NUL: the bare host */
    }
    return 0;
}

static int get_url(const struct config_json *ld, const char *key, json_t *v, char **out)
{
    if (get_string(ld, key, v, 2048, out))
        return -1;
    if (!url_ok(*out))
        return config_json_fail(ld, key, "must be an https:// URL (http:// only on 127.0.0.1, localhost or [::1])");
    return 0;
}

static int parse_name(const struct config_json *ld, json_t *v, struct profile *p)
{
    const char *key;
    json_t *x;
    if (!json_is_object(v))
        return config_json_fail(ld, "name", "must be an object {\"zh-CN\": …, \"en\": …}");
    json_object_foreach(v, key, x) {
        if (strcmp(key, "zh-CN") == 0) {
            if (get_string(ld, key, x, 128, &p->name_zh))
                return -1;
        } else if (strcmp(key, "en") == 0) {
            if (get_string(ld, key, x, 128, &p->name_en))
                return -1;
        } else {
            return config_json_fail(ld, key, "unknown key in \"name\" (known: zh-CN, en)");
        }
    }
    if (!p->name_zh || !p->name_en)
        return config_json_fail(ld, "name", "needs both \"zh-CN\" and \"en\"");
    return 0;
}

static int parse_links(const struct config_json *ld, json_t *v, struct profile *p)
{
    const char *key;
    json_t *x;
    if (!json_is_object(v))
        return config_json_fail(ld, "links", "must be an object of URLs");
    json_object_foreach(v, key, x) {
        int i = 0;
        while (i < N_LINKS && strcmp(key, link_names[i]) != 0)
            i++;
        if (i == N_LINKS)
            return config_json_fail(ld, key, "unknown key in \"links\" (known: renew, unlock, change_details, download)");
        if (get_url(ld, key, x, &p->links[i]))
            return -1;
    }
    return 0;
}

/* "CN=ukey-agent Demo CA, O=ukey-agent demo" (the certificate's order,
 * as the listings show it; "\," for a comma in a value) -> an X509_NAME. */
static X509_NAME *name_parse(const char *text)
{
    X509_NAME *name = X509_NAME_new();
    char field[512], *value;
    const char *p = text;
    while (name && *p) {
        size_t n = 0;
        while (*p == ' ')
            p++;
        while (*p && *p != ',' && n + 1 < sizeof field) {
            if (*p == '\\' && p[1])
                p++;
            field[n++] = *p++;
        }
        field[n] = '\0';
        if (*p && *p != ',')
            goto bad; /* too long */
        if (*p == ',')
            p++;
        while (n > 0 && field[n - 1] == ' ')
            field[--n] = '\0';
        if (!(value = strchr(field, '=')) || value == field || !value[1])
            goto bad;
        *value++ = '\0';
        if (!X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)value, -1, -1, 0))
            goto bad;
    }
    if (name && X509_NAME_entry_count(name) > 0)
        return name;
bad:
    ERR_clear_error();
    X509_NAME_free(name);
    return NULL;
}

/* "a1b2…" (hex, ':' between bytes allowed) -> an octet string. */
static ASN1_OCTET_STRING *key_id_parse(const char *hex)
{
    unsigned char buf[64];
    size_t n = 0;
    ASN1_OCTET_STRING *o;
    for (const char *p = hex; *p;) {
        int hi, lo;
        if (*p == ':' && n > 0) {
            p++;
            continue;
        }
        hi = OPENSSL_hexchar2int((unsigned char)p[0]);
        lo = p[0] ? OPENSSL_hexchar2int((unsigned char)p[1]) : -1;
        if (hi < 0 || lo < 0 || n == sizeof buf)
            return NULL;
        buf[n++] = (unsigned char)(hi << 4 | lo);
        p += 2;
    }
    if (n == 0 || !(o = ASN1_OCTET_STRING_new()))
        return NULL;
    if (!ASN1_OCTET_STRING_set(o, buf, (int)n)) {
        ASN1_OCTET_STRING_free(o);
        return NULL;
    }
    return o;
}

static int parse_issuers(const struct config_json *ld, json_t *v, struct profile *p)
{
    static const char *const shape = "every entry is {\"subject\": \"CN=…, O=…\"} or {\"key_id\": \"<hex>\"}";
    size_t i;
    json_t *o;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return config_json_fail(ld, "issuers", "must be a non-empty array of issuers");
    json_array_foreach(v, i, o) {
        json_t *subject = json_object_get(o, "subject"), *kid = json_object_get(o, "key_id");
        if (!json_is_object(o) || json_object_size(o) != 1 || (!json_is_string(subject) && !json_is_string(kid)) ||
            strlen(json_string_value(subject ? subject : kid)) != json_string_length(subject ? subject : kid))
            return config_json_fail(ld, "issuers", shape);
        if (subject) {
            X509_NAME *name = name_parse(json_string_value(subject));
            if (!name)
                return config_json_fail(ld, "subject", "is not a distinguished name such as \"CN=Example CA, O=Example, C=CN\"");
            if (!sk_X509_NAME_push(p->issuer_names, name)) {
                X509_NAME_free(name);
                return config_json_fail(ld, "subject", "out of memory");
            }
        } else {
            ASN1_OCTET_STRING *id = key_id_parse(json_string_value(kid));
            if (!id)
                return config_json_fail(ld, "key_id", "must be the issuer's key identifier in hex (1 to 64 bytes)");
            if (!sk_ASN1_OCTET_STRING_push(p->key_ids, id)) {
                ASN1_OCTET_STRING_free(id);
                return config_json_fail(ld, "key_id", "out of memory");
            }
        }
    }
    return 0;
}

/* Trust anchors: paths relative to the profile's directory, each a file of PEM certificates. */
static int parse_anchors(const struct config_json *ld, json_t *v, struct profile *p)
{
    size_t i;
    json_t *o;
    const char *slash = strrchr(ld->path, '/');
    int dirlen = slash ? (int)(slash - ld->path) : 1;
    if (!json_is_array(v))
        return config_json_fail(ld, "trust_anchors", "must be an array of certificate files (PEM)");
    json_array_foreach(v, i, o) {
        char path[4200], what[4400];
        const char *file = json_string_value(o);
        if (!json_is_string(o) || !*file || strlen(file) != json_string_length(o))
            return config_json_fail(ld, "trust_anchors", "every entry is the path of a PEM file");
        if (file[0] == '/')
            snprintf(path, sizeof path, "%s", file);
        else
            snprintf(path, sizeof path, "%.*s/%s", dirlen, slash ? ld->path : ".", file);
        errno = 0;
        if (x509_stack_add_file(p->anchors, path) <= 0) {
            snprintf(what, sizeof what, "%s: %s", path,
                     errno == ENOENT ? "no such file" : "holds no PEM certificate");
            return config_json_fail(ld, "trust_anchors", what);
        }
    }
    return 0;
}

static int version_ok(const char *s)
{
    int digits = 0;
    for (; *s; s++) {
        if (*s >= '0' && *s <= '9')
            digits++;
        else if (*s == '.' && digits)
            digits = 0;
        else
            return 0;
    }
    return digits > 0;
}

static int parse_object(const struct config_json *ld, json_t *root, struct profile *p, struct agent_config *origins)
{
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        int rc = 0;
        if (strcmp(key, "id") == 0) {
            rc = get_string(ld, key, v, 32, &p->id);
            if (rc == 0 && !id_ok(p->id))
                rc = config_json_fail(ld, key, "must be 1 to 32 of a-z, 0-9 and '-', not starting with '-'");
        } else if (strcmp(key, "name") == 0) {
            rc = parse_name(ld, v, p);
        } else if (strcmp(key, "hotline") == 0) {
            rc = get_string(ld, key, v, 32, &p->hotline);
            if (rc == 0 && !phone_ok(p->hotline))
                rc = config_json_fail(ld, key, "must be 3 to 32 of digits, spaces and + - ( )");
        } else if (strcmp(key, "service_points_url") == 0) {
            rc = get_url(ld, key, v, &p->service_points_url);
        } else if (strcmp(key, "links") == 0) {
            rc = parse_links(ld, v, p);
        } else if (strcmp(key, "trust_anchors") == 0) {
            rc = parse_anchors(ld, v, p);
        } else if (strcmp(key, "allow_origins") == 0) {
            rc = config_json_origins(ld, origins, key, v);
        } else if (strcmp(key, "min_agent_version") == 0) {
            rc = get_string(ld, key, v, 32, &p->min_version);
            if (rc == 0 && !version_ok(p->min_version))
                rc = config_json_fail(ld, key, "must be a version such as \"0.1.0\"");
        } else if (strcmp(key, "issuers") == 0) {
            rc = parse_issuers(ld, v, p);
        } else if (strcmp(key, "reminder_days") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 365)
                rc = config_json_fail(ld, key, "must be an integer from 1 to 365");
            else
                p->reminder_days = (unsigned)json_integer_value(v);
        } else {
            rc = config_json_fail(ld, key, "unknown key (known: id, name, hotline, service_points_url, links, "
                                           "trust_anchors, allow_origins, min_agent_version, issuers, reminder_days)");
        }
        if (rc)
            return -1;
    }
    if (!p->id)
        return config_json_fail(ld, "id", "is required");
    if (!p->name_zh)
        return config_json_fail(ld, "name", "is required");
    if (sk_X509_NAME_num(p->issuer_names) + sk_ASN1_OCTET_STRING_num(p->key_ids) == 0)
        return config_json_fail(ld, "issuers", "is required (which certificates the profile is for)");
    return 0;
}

/* Parses the profile at `path`, adding its allow_origins to `origins`. */
static struct profile *profile_read(const char *path, struct agent_config *origins, char *err, size_t errlen)
{
    struct config_json ld = {path, NULL, err, errlen};
    struct profile *p = calloc(1, sizeof *p);
    char *text = NULL;
    json_t *root = NULL;
    int rc = -1;

    if (!p || !(p->path = strdup(path)) || !(p->anchors = sk_X509_new_null()) ||
        !(p->issuer_names = sk_X509_NAME_new_null()) || !(p->key_ids = sk_ASN1_OCTET_STRING_new_null()))
        snprintf(err, errlen, "%s: out of memory", path);
    else if ((root = config_json_open(&ld, &text, "profile")) != NULL)
        rc = parse_object(&ld, root, p, origins);
    json_decref(root);
    free(text);
    if (rc) {
        profile_free(p);
        return NULL;
    }
    if (!p->reminder_days)
        p->reminder_days = PROFILE_DEFAULT_REMINDER_DAYS;
    return p;
}

int profile_check_file(const char *path, char *err, size_t errlen)
{
    struct agent_config scratch;
    struct profile *p;
    config_defaults(&scratch);
    p = profile_read(path, &scratch, err, errlen);
    config_free(&scratch);
    profile_free(p);
    return p ? 0 : -1;
}

/* Appends the profile at `path` to `set`; -1 with `err` (also for an id used before). */
static int set_add(struct profile ***set, size_t *n, const char *path, struct agent_config *cfg, char *err,
                   size_t errlen)
{
    struct profile *p = profile_read(path, cfg, err, errlen), **grown;
    if (!p)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*set)[i]->id, p->id) == 0) {
            snprintf(err, errlen, "%s: key \"id\": the profile id \"%s\" is also used by %s", path, p->id,
                     (*set)[i]->path);
            profile_free(p);
            return -1;
        }
    }
    if (!(grown = realloc(*set, (*n + 1) * sizeof *grown))) {
        snprintf(err, errlen, "out of memory");
        profile_free(p);
        return -1;
    }
    *set = grown;
    grown[(*n)++] = p;
    return 0;
}

/* Every *.json of `dir` in name order; a missing directory has none. */
static int set_add_dir(struct profile ***set, size_t *n, const char *dir, struct agent_config *cfg, char *err,
                       size_t errlen)
{
    char **names = file_list(dir, ".json", NULL);
    int rc = 0;
    if (!names) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        snprintf(err, errlen, "%s: cannot read the profile directory: %s", dir, strerror(errno));
        return -1;
    }
    for (size_t i = 0; rc == 0 && names[i]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        rc = set_add(set, n, path, cfg, err, errlen);
    }
    file_list_free(names);
    return rc;
}

/* set_add_dir of dir/profiles. */
static int set_add_subdir(struct profile ***set, size_t *n, const char *dir, struct agent_config *cfg, char *err,
                          size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/profiles", dir);
    return set_add_dir(set, n, path, cfg, err, errlen);
}

void profiles_free(void)
{
    for (size_t i = 0; i < n_loaded; i++)
        profile_free(loaded[i]);
    free(loaded);
    loaded = NULL;
    n_loaded = 0;
}

int profiles_load(struct agent_config *cfg, char *err, size_t errlen)
{
    struct profile **set = NULL;
    size_t n = 0;
    int rc = 0;

    if (cfg->profile_dirs_set) {
        for (size_t i = 0; rc == 0 && i < cfg->n_profile_dirs; i++)
            rc = set_add_dir(&set, &n, cfg->profile_dirs[i], cfg, err, errlen);
    } else {
        char *user = dirs_get(DIRS_USER_CONFIG), *system = dirs_get(DIRS_SYSTEM_CONFIG);
        rc = set_add_dir(&set, &n, dirs_profiles(), cfg, err, errlen);
        if (rc == 0 && system)
            rc = set_add_subdir(&set, &n, system, cfg, err, errlen);
        if (rc == 0 && user)
            rc = set_add_subdir(&set, &n, user, cfg, err, errlen);
        free(system);
        free(user);
    }
    for (size_t i = 0; rc == 0 && i < cfg->n_profiles; i++)
        rc = set_add(&set, &n, cfg->profiles[i], cfg, err, errlen);
    profiles_free();
    loaded = set;
    n_loaded = n;
    if (rc) {
        profiles_free();
        return -1;
    }
    for (size_t i = 0; i < n_loaded; i++)
        log_info("profile \"%s\" loaded from %s", loaded[i]->id, loaded[i]->path);
    return 0;
}

static int profile_covers(const struct profile *p, X509 *cert)
{
    const X509_NAME *issuer = X509_get_issuer_name(cert);
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(cert);
    for (int i = 0; i < sk_X509_NAME_num(p->issuer_names); i++)
        if (X509_NAME_cmp(issuer, sk_X509_NAME_value(p->issuer_names, i)) == 0)
            return 1;
    for (int i = 0; akid && i < sk_ASN1_OCTET_STRING_num(p->key_ids); i++)
        if (ASN1_OCTET_STRING_cmp(akid, sk_ASN1_OCTET_STRING_value(p->key_ids, i)) == 0)
            return 1;
    return 0;
}

const struct profile *profiles_for_cert(X509 *cert)
{
    for (size_t i = 0; cert && i < n_loaded; i++)
        if (profile_covers(loaded[i], cert))
            return loaded[i];
    ERR_clear_error();
    return NULL;
}

const char *profile_id(const struct profile *p) { return p->id; }

int profiles_help(X509 *cert, enum help_topic topic, struct profile_help *out)
{
    const struct profile *p = profiles_for_cert(cert);
    const char *url = NULL;
    memset(out, 0, sizeof *out);
    if (!p)
        return -1;
    switch (topic) {
    case HELP_RENEW:
        url = p->links[LINK_RENEW];
        break;
    case HELP_UNLOCK:
        url = p->links[LINK_UNLOCK];
        break;
    case HELP_CHANGE_DETAILS:
        url = p->links[LINK_CHANGE_DETAILS];
        break;
    case HELP_SERVICE:
        break;
    }
    out->name_zh = p->name_zh;
    out->name_en = p->name_en;
    out->phone = p->hotline;
    out->url = url ? url : p->service_points_url;
    return 0;
}

unsigned profiles_reminder_days(X509 *cert)
{
    const struct profile *p = profiles_for_cert(cert);
    return p ? p->reminder_days : PROFILE_DEFAULT_REMINDER_DAYS;
}

json_t *profile_help_json(const struct profile_help *h, enum diag_lang lang)
{
    return json_pack("{s:s*, s:s*, s:s*}", "name", lang == DIAG_ZH ? h->name_zh : h->name_en, "phone", h->phone,
                     "url", h->url);
}

void profiles_annotate_cert(json_t *c, const unsigned char *der, size_t len, time_t now)
{
    X509 *x = n_loaded ? x509_from_der(der, len) : NULL;
    const struct profile *p = profiles_for_cert(x);
    if (p) {
        /* Calendar days, as the desktop reminder counts them (util/clock.h). */
        long days_left = clock_local_day(x509_time_utc(X509_get0_notAfter(x))) - clock_local_day(now);
        json_object_set_new(c, "profile", json_string(p->id));
        if (days_left <= (long)p->reminder_days)
            json_object_set_new(c, "reminder",
                                json_pack("{s:I, s:i, s:s*}", "days_left", (json_int_t)days_left, "window_days",
                                          (int)p->reminder_days, "renew_url", p->links[LINK_RENEW]));
    }
    X509_free(x);
}

const char *profiles_min_version(void)
{
    const char *best = NULL;
    for (size_t i = 0; i < n_loaded; i++)
        if (loaded[i]->min_version && (!best || diag_version_cmp(loaded[i]->min_version, best) > 0))
            best = loaded[i]->min_version;
    return best;
}

void profiles_add_anchors(STACK_OF(X509) *sk)
{
    for (size_t i = 0; i < n_loaded; i++)
        for (int k = 0; k < sk_X509_num(loaded[i]->anchors); k++) {
            X509 *c = sk_X509_value(loaded[i]->anchors, k);
            if (X509_up_ref(c) && !sk_X509_push(sk, c))
                X509_free(c);
        }
}

json_t *profiles_json(int with_paths)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < n_loaded; i++) {
        const struct profile *p = loaded[i];
        json_t *links = json_object();
        for (int k = 0; links && k < N_LINKS; k++)
            if (p->links[k])
                json_object_set_new(links, link_names[k], json_string(p->links[k]));
        if (json_array_append_new(list, json_pack("{s:s, s:{s:s, s:s}, s:s*, s:s*, s:o, s:i, s:s*, s:s*}", "id", p->id,
                                                  "name", "zh-CN", p->name_zh, "en", p->name_en, "hotline", p->hotline,
                                                  "service_points_url", p->service_points_url, "links",
                                                  links ? links : json_object(), "reminder_days", (int)p->reminder_days,
                                                  "min_agent_version", p->min_version, "file",
                                                  with_paths ? p->path : NULL)) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list ? json_pack("{s:o}", "profiles", list) : NULL;
}
