/*
 * trust.h on every platform (security.md 4.3, TLS-05, TLS-07): the CA's
 * facts, the manifest of stores installed into (state_dir/trust.json, so a
 * renewal re-installs there), and the loops over the stores that
 * trust_store.h's platform file finds, with their report lines and the
 * status table / JSON the diagnostics read.
 */
#include "localca/trust.h"

#include "localca/localca.h"
#include "localca/trust_store.h"
#include "util/file.h"
#include "util/log.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MANIFEST_FILE "trust.json"
#define MANIFEST_MAX (1024 * 1024)

static int ca_load(const char *state_dir, struct trust_ca *ca)
{
    snprintf(ca->path, sizeof ca->path, "%s/%s", state_dir, LOCALCA_CA_FILE);
    if (localca_fingerprint_file(ca->path, ca->fp) != 0) {
        log_error("cannot read the agent's CA certificate %s", ca->path);
        return -1;
    }
    snprintf(ca->nick, sizeof ca->nick, TRUST_NICK_PREFIX "%.16s", ca->fp);
    return 0;
}

/* A zeroed table of TRUST_MAX_STORES stores (caller frees), with the
 * current CA loaded into *ca; NULL on error (logged). */
static struct trust_store *stores_begin(const char *state_dir, struct trust_ca *ca)
{
    struct trust_store *stores;
    if (ca_load(state_dir, ca) != 0)
        return NULL;
    if (!(stores = calloc(TRUST_MAX_STORES, sizeof *stores)))
        log_error("out of memory");
    return stores;
}

/* Writes the manifest of stores installed into (atomically, 0600). */
static int manifest_write(const char *state_dir, const struct trust_store *stores, size_t n)
{
    char path[4200];
    json_t *list = json_array(), *root;
    char *text;
    int rc = -1;
    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "kind", stores[i].kind, "name", stores[i].name,
                                              "path", stores[i].path));
    root = json_pack("{s:o}", "stores", list ? list : json_array());
    snprintf(path, sizeof path, "%s/%s", state_dir, MANIFEST_FILE);
    if (root && (text = json_dumps(root, JSON_INDENT(2))) != NULL) {
        rc = file_write_atomic(path, text, strlen(text), 0600);
        free(text);
    }
    json_decref(root);
    if (rc != 0)
        log_error("cannot write %s: %s", path, strerror(errno));
    return rc;
}

/* Reads the manifest into `stores` (marked recorded); returns the count
 * (0 if there is none or it is unreadable). */
static size_t manifest_read(const char *state_dir, struct trust_store *stores)
{
    char path[4200], *text;
    json_t *root, *s;
    size_t i, n = 0;
    snprintf(path, sizeof path, "%s/%s", state_dir, MANIFEST_FILE);
    if (!(text = file_read_all(path, MANIFEST_MAX, NULL)))
        return 0;
    root = json_loads(text, 0, NULL);
    free(text);
    json_array_foreach(json_object_get(root, "stores"), i, s) {
        const char *kind = json_string_value(json_object_get(s, "kind"));
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *spath = json_string_value(json_object_get(s, "path"));
        struct trust_store *st = &stores[n];
        if (!kind || !name || !spath || n >= TRUST_MAX_STORES || strlen(kind) >= sizeof st->kind)
            continue;
        memset(st, 0, sizeof *st);
        snprintf(st->kind, sizeof st->kind, "%s", kind);
        snprintf(st->name, sizeof st->name, "%s", name);
        snprintf(st->path, sizeof st->path, "%s", spath);
        st->recorded = 1;
        n++;
    }
    json_decref(root);
    return n;
}

/* Marks the stores that trust.json records (same kind and name: the system
 * store's file changes with the CA). */
static void mark_recorded(const char *state_dir, struct trust_store *stores, size_t n)
{
    struct trust_store *rec = calloc(TRUST_MAX_STORES, sizeof *rec);
    size_t n_rec = rec ? manifest_read(state_dir, rec) : 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n_rec; j++)
            if (strcmp(stores[i].kind, rec[j].kind) == 0 && strcmp(stores[i].name, rec[j].name) == 0)
                stores[i].recorded = 1;
    free(rec);
}

int trust_install(const char *state_dir, int with_system, FILE *out)
{
    struct trust_ca ca;
    struct trust_store *stores = stores_begin(state_dir, &ca);
    struct trust_store *done = calloc(TRUST_MAX_STORES, sizeof *done);
    size_t n, n_done = 0;
    int rc = -1;

    if (!stores || !done)
        goto out;
    n = truststore_find(stores, 1, with_system, &ca);
    mark_recorded(state_dir, stores, n);
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        char err[1024] = "";
        int r = truststore_install(&stores[i], &ca, err, sizeof err);
        if (r == 0) {
            fprintf(out, "installed: %s %s\n", stores[i].name, stores[i].path);
            done[n_done++] = stores[i];
        } else if (r > 0) {
            fprintf(out, "skipped: %s %s: %s\n", stores[i].name, stores[i].path, err);
        } else {
            fprintf(out, "FAILED: %s %s: %s\n", stores[i].name, stores[i].path, err);
            rc = -1;
        }
    }
    if (n == 0)
        fprintf(out, "no trust store found (no HOME?)\n");
    if (manifest_write(state_dir, done, n_done) != 0)
        rc = -1;
out:
    free(stores);
    free(done);
    return rc;
}

int trust_uninstall(const char *state_dir, int with_system, FILE *out)
{
    struct trust_ca ca;
    struct trust_store *stores = stores_begin(state_dir, &ca);
    size_t n;
    int rc = -1;

    if (!stores)
        return -1;
    n = truststore_find(stores, 0, with_system, &ca);
    mark_recorded(state_dir, stores, n);
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        char err[1024] = "";
        int removed = truststore_remove(&stores[i], err, sizeof err);
        if (removed >= 0) {
            fprintf(out, "removed: %s %s (%d ukey-agent CA%s)\n", stores[i].name, stores[i].path, removed,
                    removed == 1 ? "" : "s");
        } else {
            fprintf(out, "FAILED: %s %s: %s\n", stores[i].name, stores[i].path, err);
            rc = -1;
        }
    }
    if (manifest_write(state_dir, NULL, 0) != 0)
        rc = -1;
    free(stores);
    return rc;
}

int trust_refresh(const char *state_dir)
{
    struct trust_ca ca;
    struct trust_store *stores = stores_begin(state_dir, &ca);
    size_t n;
    int rc = 0;

    if (!stores)
        return -1;
    n = manifest_read(state_dir, stores);
    for (size_t i = 0; i < n; i++) {
        char err[1024] = "";
        if (truststore_install(&stores[i], &ca, err, sizeof err) >= 0) {
            log_info("trust: renewed CA installed in %s %s", stores[i].name, stores[i].path);
        } else {
            log_warn("trust: cannot install the renewed CA in %s %s: %s", stores[i].name, stores[i].path, err);
            rc = -1;
        }
    }
    if (n > 0 && manifest_write(state_dir, stores, n) != 0)
        rc = -1;
    free(stores);
    return rc;
}

/* Facts about every store: the current CA there, older ukey-agent CAs.
 * Sets *missing when a store lacks the current CA (an optional one only
 * if trust.json records it). */
static json_t *stores_facts(const char *state_dir, const struct trust_ca *ca, int *missing)
{
    struct trust_store *stores = calloc(TRUST_MAX_STORES, sizeof *stores);
    json_t *list = json_array();
    size_t n;

    *missing = 0;
    if (!stores || !list) {
        free(stores);
        json_decref(list);
        return NULL;
    }
    n = truststore_find(stores, 0, 1, ca);
    mark_recorded(state_dir, stores, n);
    for (size_t i = 0; i < n; i++) {
        char err[1024] = "";
        int current = 0, old = truststore_probe(&stores[i], ca, &current, err, sizeof err);
        if (!current && (!stores[i].optional || stores[i].recorded))
            *missing = 1;
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:b, s:i, s:s?}", "kind", stores[i].kind,
                                              "name", stores[i].name, "path", stores[i].path,
                                              "current_ca", current, "old_cas", old < 0 ? 0 : old,
                                              "error", err[0] ? err : NULL));
    }
    free(stores);
    return list;
}

int trust_status(const char *state_dir, int json, FILE *out)
{
    struct trust_ca ca;
    json_t *stores, *s;
    size_t i;
    int missing;

    if (ca_load(state_dir, &ca) != 0 || !(stores = stores_facts(state_dir, &ca, &missing)))
        return -1;
    if (json) {
        json_t *root = json_pack("{s:{s:s, s:s}, s:O}", "ca", "path", ca.path, "fingerprint_sha256", ca.fp,
                                 "stores", stores);
        if (root)
            json_dumpf(root, out, JSON_INDENT(2));
        fputc('\n', out);
        json_decref(root);
    } else {
        fprintf(out, "CA %s (SHA-256 %s)\n", ca.path, ca.fp);
        json_array_foreach(stores, i, s) {
            const char *err = json_string_value(json_object_get(s, "error"));
            fprintf(out, "  %-3s %-40s %s", json_is_true(json_object_get(s, "current_ca")) ? "yes" : "no",
                    json_string_value(json_object_get(s, "name")), json_string_value(json_object_get(s, "path")));
            if (json_integer_value(json_object_get(s, "old_cas")) > 0)
                fprintf(out, " (+%lld older ukey-agent CA)", (long long)json_integer_value(json_object_get(s, "old_cas")));
            fprintf(out, "%s%s\n", err ? ": " : "", err ? err : "");
        }
        if (json_array_size(stores) == 0)
            fprintf(out, "  no trust store found\n");
    }
    json_decref(stores);
    return missing ? 1 : 0;
}

json_t *trust_stores_json(const char *state_dir)
{
    struct trust_ca ca;
    int missing;
    if (ca_load(state_dir, &ca) != 0)
        return NULL;
    return stores_facts(state_dir, &ca, &missing);
}
