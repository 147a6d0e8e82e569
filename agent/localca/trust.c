/*
 * Installs the agent's local CA where browsers look for trust anchors, and
 * takes it out again (security.md 4.3, TLS-05, TLS-07):
 *   - NSS databases: Chromium's shared DB (~/.pki/nssdb, snap too) and every
 *     Firefox profile that has a cert9.db; trust "C,," = TLS servers only;
 *   - as root, the system store: /usr/local/share/ca-certificates +
 *     update-ca-certificates.
 * Each CA goes in under "ukey-agent local CA <16 hex of its SHA-256>", so the
 * CAs of earlier installs are found and removed too. The stores installed
 * into are recorded in state_dir/trust.json, so a renewal re-installs there.
 * certutil and update-ca-certificates run as programs (argv, no shell).
 */
#include "localca/trust.h"

#include "localca/localca.h"
#include "util/file.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NICK_PREFIX "ukey-agent local CA "
#define SYSTEM_DIR "/usr/local/share/ca-certificates"
#define SYSTEM_PREFIX "ukey-agent-"
#define MAX_STORES 64
#define MAX_NICKS 32

struct store {
    int system;          /* 0: NSS database, 1: the system store */
    char name[160];      /* "Chromium", "Firefox profile abcd.default" */
    char path[4200];     /* "sql:/home/u/.pki/nssdb", or the system .crt file */
};

/* The current CA: its file, fingerprint and names in the stores. */
struct ca_info {
    char path[4200];
    char fp[65];
    char nick[64];
    char system_file[4200];
};

/*
 * Runs argv[0] (looked up in PATH) with stdin from /dev/null and stdout +
 * stderr captured into `out` (if not NULL, cut to outlen - 1 bytes). Returns
 * the exit status, or -1 if it could not run (with the reason in `out`).
 */
static int run(char *const argv[], char *out, size_t outlen)
{
    int fds[2], status;
    size_t used = 0;
    pid_t pid;

    if (out && outlen)
        out[0] = '\0';
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        execvp(argv[0], argv);
        dprintf(2, "cannot run %s: %s", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        char buf[1024];
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (out && used + 1 < outlen) {
            size_t take = (size_t)n < outlen - 1 - used ? (size_t)n : outlen - 1 - used;
            memcpy(out + used, buf, take);
            used += take;
            out[used] = '\0';
        }
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int ca_info_load(const char *state_dir, struct ca_info *ca)
{
    snprintf(ca->path, sizeof ca->path, "%s/%s", state_dir, LOCALCA_CA_FILE);
    if (localca_fingerprint_file(ca->path, ca->fp) != 0) {
        log_error("cannot read the agent's CA certificate %s", ca->path);
        return -1;
    }
    snprintf(ca->nick, sizeof ca->nick, NICK_PREFIX "%.16s", ca->fp);
    snprintf(ca->system_file, sizeof ca->system_file, SYSTEM_DIR "/" SYSTEM_PREFIX "%.16s.crt", ca->fp);
    return 0;
}

static size_t add_store(struct store *stores, size_t n, int system, const char *name, const char *path)
{
    if (n >= MAX_STORES)
        return n;
    stores[n].system = system;
    snprintf(stores[n].name, sizeof stores[n].name, "%s", name);
    snprintf(stores[n].path, sizeof stores[n].path, "%s%.4096s", system ? "" : "sql:", path);
    return n + 1;
}

/* Adds every Firefox profile under `root` that has an NSS database. */
static size_t add_firefox_profiles(struct store *stores, size_t n, const char *root)
{
    DIR *d = opendir(root);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char dir[4200], db[4300], name[160];
        if (e->d_name[0] == '.')
            continue;
        snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
        snprintf(db, sizeof db, "%s/cert9.db", dir);
        if (!is_dir(dir) || access(db, F_OK) != 0)
            continue;
        snprintf(name, sizeof name, "Firefox profile %.140s", e->d_name);
        n = add_store(stores, n, 0, name, dir);
    }
    if (d)
        closedir(d);
    return n;
}

/*
 * Lists the stores of this user: Chromium's NSS DB (created when `create`
 * and missing, since Chromium reads it once it exists), snap Chromium,
 * Firefox profiles, and the system store when `with_system`.
 */
static size_t find_stores(struct store *stores, int create, int with_system, const struct ca_info *ca)
{
    const char *home = getenv("HOME");
    char path[4200];
    size_t n = 0;

    if (home && *home) {
        snprintf(path, sizeof path, "%s/.pki/nssdb", home);
        if (!is_dir(path) && create) {
            char parent[4200], db[4210], out[512];
            char *argv[] = {"certutil", "-N", "-d", db, "--empty-password", NULL};
            snprintf(parent, sizeof parent, "%s/.pki", home);
            mkdir(parent, 0700);
            mkdir(path, 0700);
            snprintf(db, sizeof db, "sql:%s", path);
            if (run(argv, out, sizeof out) != 0)
                log_warn("cannot create the Chromium NSS database %s: %s", path, out);
        }
        if (is_dir(path))
            n = add_store(stores, n, 0, "Chromium", path);
        snprintf(path, sizeof path, "%s/snap/chromium/current/.pki/nssdb", home);
        if (is_dir(path))
            n = add_store(stores, n, 0, "Chromium (snap)", path);
        snprintf(path, sizeof path, "%s/.mozilla/firefox", home);
        n = add_firefox_profiles(stores, n, path);
        snprintf(path, sizeof path, "%s/snap/firefox/common/.mozilla/firefox", home);
        n = add_firefox_profiles(stores, n, path);
    }
    if (with_system)
        n = add_store(stores, n, 1, "system", ca->system_file);
    return n;
}

/* Fills `nicks` with the ukey-agent CA nicknames in NSS database `db`;
 * returns how many, or -1 if certutil failed (message in `err`). */
static int nss_agent_nicks(const char *db, char nicks[][64], int max, char *err, size_t errlen)
{
    char out[16384];
    char *argv[] = {"certutil", "-L", "-d", (char *)db, NULL};
    int n = 0;
    if (run(argv, out, sizeof out) != 0) {
        snprintf(err, errlen, "%.900s", out);
        return -1;
    }
    for (char *line = strtok(out, "\n"); line && n < max; line = strtok(NULL, "\n")) {
        char hex[17];
        if (strncmp(line, NICK_PREFIX, strlen(NICK_PREFIX)) == 0 &&
            sscanf(line + strlen(NICK_PREFIX), "%16[0-9a-f]", hex) == 1)
            snprintf(nicks[n++], 64, NICK_PREFIX "%s", hex);
    }
    return n;
}

/* Removes every ukey-agent CA from NSS database `db` except `keep` (may be NULL). */
static int nss_remove(const char *db, const char *keep, char *err, size_t errlen)
{
    char nicks[MAX_NICKS][64];
    int n = nss_agent_nicks(db, nicks, MAX_NICKS, err, errlen);
    for (int i = 0; i < n; i++) {
        char *argv[] = {"certutil", "-D", "-d", (char *)db, "-n", nicks[i], NULL};
        if (keep && strcmp(nicks[i], keep) == 0)
            continue;
        if (run(argv, err, errlen) != 0)
            return -1;
    }
    return n < 0 ? -1 : 0;
}

static int nss_install(const char *db, const struct ca_info *ca, char *err, size_t errlen)
{
    char *has[] = {"certutil", "-L", "-d", (char *)db, "-n", (char *)ca->nick, NULL};
    char *add[] = {"certutil", "-A", "-d", (char *)db, "-n", (char *)ca->nick, "-t", "C,,",
                   "-i", (char *)ca->path, NULL};
    if (nss_remove(db, ca->nick, err, errlen) != 0)
        return -1;
    if (run(has, NULL, 0) == 0)
        return 0;
    return run(add, err, errlen) == 0 ? 0 : -1;
}

/* Counts — and with `remove`, deletes — the ukey-agent-*.crt files of the
 * system store other than `keep` (may be NULL). Returns the count, -1 on error. */
static int system_sweep(const char *keep, int remove, char *err, size_t errlen)
{
    DIR *d = opendir(SYSTEM_DIR);
    struct dirent *e;
    int removed = 0;
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[4200];
        if (strncmp(e->d_name, SYSTEM_PREFIX, strlen(SYSTEM_PREFIX)) != 0)
            continue;
        snprintf(path, sizeof path, SYSTEM_DIR "/%s", e->d_name);
        if (keep && strcmp(path, keep) == 0)
            continue;
        if (remove && unlink(path) != 0) {
            snprintf(err, errlen, "cannot remove %.900s: %s", path, strerror(errno));
            closedir(d);
            return -1;
        }
        removed++;
    }
    closedir(d);
    return removed;
}

/* `fresh` rebuilds /etc/ssl/certs from scratch: after a removal a plain
 * run can leave dangling links to the deleted file behind. */
static int system_update(int fresh, char *err, size_t errlen)
{
    char *argv[] = {"update-ca-certificates", fresh ? "--fresh" : NULL, NULL};
    return run(argv, err, errlen) == 0 ? 0 : -1;
}

static int system_install(const struct ca_info *ca, char *err, size_t errlen)
{
    char *pem = file_read_all(ca->path, 64 * 1024, NULL);
    FILE *f;
    int rc = -1;
    if (!pem) {
        snprintf(err, errlen, "cannot read %.900s", ca->path);
        return -1;
    }
    mkdir(SYSTEM_DIR, 0755);
    if (system_sweep(ca->system_file, 1, err, errlen) < 0)
        goto out;
    if (!(f = fopen(ca->system_file, "w"))) {
        snprintf(err, errlen, "cannot write %.900s: %s", ca->system_file, strerror(errno));
        goto out;
    }
    fputs(pem, f);
    if (fclose(f) != 0 || chmod(ca->system_file, 0644) != 0) {
        snprintf(err, errlen, "cannot write %.900s: %s", ca->system_file, strerror(errno));
        goto out;
    }
    rc = system_update(0, err, errlen);
out:
    free(pem);
    return rc;
}

/* 1 if the system store file holds exactly the current CA. */
static int system_has(const struct ca_info *ca)
{
    char *a = file_read_all(ca->path, 64 * 1024, NULL), *b = file_read_all(ca->system_file, 64 * 1024, NULL);
    int same = a && b && strcmp(a, b) == 0;
    free(a);
    free(b);
    return same;
}

static int install_one(const struct store *s, const struct ca_info *ca, char *err, size_t errlen)
{
    return s->system ? system_install(ca, err, errlen) : nss_install(s->path, ca, err, errlen);
}

/* Writes the manifest of stores installed into (temp file + rename, 0600). */
static int manifest_write(const char *state_dir, const struct store *stores, size_t n)
{
    char path[4200], tmp[4300];
    json_t *list = json_array(), *root;
    int rc;
    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "kind", stores[i].system ? "system" : "nss",
                                              "name", stores[i].name, "path", stores[i].path));
    root = json_pack("{s:o}", "stores", list ? list : json_array());
    snprintf(path, sizeof path, "%s/trust.json", state_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    rc = root ? json_dump_file(root, tmp, JSON_INDENT(2)) : -1;
    json_decref(root);
    if (rc == 0 && (chmod(tmp, 0600) != 0 || rename(tmp, path) != 0))
        rc = -1;
    if (rc != 0) {
        unlink(tmp);
        log_error("cannot write %s", path);
    }
    return rc;
}

/* Reads the manifest into `stores`; returns the count (0 if there is none). */
static size_t manifest_read(const char *state_dir, struct store *stores)
{
    char path[4200];
    json_t *root, *list, *s;
    size_t i, n = 0;
    snprintf(path, sizeof path, "%s/trust.json", state_dir);
    if (!(root = json_load_file(path, 0, NULL)))
        return 0;
    list = json_object_get(root, "stores");
    json_array_foreach(list, i, s) {
        const char *kind = json_string_value(json_object_get(s, "kind"));
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *spath = json_string_value(json_object_get(s, "path"));
        if (!kind || !name || !spath || n >= MAX_STORES)
            continue;
        stores[n].system = strcmp(kind, "system") == 0;
        snprintf(stores[n].name, sizeof stores[n].name, "%s", name);
        snprintf(stores[n].path, sizeof stores[n].path, "%s", spath);
        n++;
    }
    json_decref(root);
    return n;
}

int trust_install(const char *state_dir, int with_system, FILE *out)
{
    struct store *stores = calloc(MAX_STORES, sizeof *stores), *done = calloc(MAX_STORES, sizeof *done);
    struct ca_info ca;
    size_t n, n_done = 0;
    int rc = -1;

    if (!stores || !done || ca_info_load(state_dir, &ca) != 0)
        goto out;
    n = find_stores(stores, 1, with_system, &ca);
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        char err[1024];
        if (install_one(&stores[i], &ca, err, sizeof err) == 0) {
            fprintf(out, "installed: %s %s\n", stores[i].name, stores[i].path);
            done[n_done++] = stores[i];
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
    struct store *stores = calloc(MAX_STORES, sizeof *stores);
    struct ca_info ca;
    size_t n;
    int rc = -1;

    if (!stores || ca_info_load(state_dir, &ca) != 0)
        goto out;
    n = find_stores(stores, 0, 0, &ca);
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        char err[1024];
        if (nss_remove(stores[i].path, NULL, err, sizeof err) == 0) {
            fprintf(out, "removed: %s %s\n", stores[i].name, stores[i].path);
        } else {
            fprintf(out, "FAILED: %s %s: %s\n", stores[i].name, stores[i].path, err);
            rc = -1;
        }
    }
    if (with_system) {
        char err[1024];
        int removed = system_sweep(NULL, 1, err, sizeof err);
        if (removed < 0 || (removed > 0 && system_update(1, err, sizeof err) != 0)) {
            fprintf(out, "FAILED: system store: %s\n", err);
            rc = -1;
        } else {
            fprintf(out, "removed: system store (%d file%s)\n", removed, removed == 1 ? "" : "s");
        }
    }
    if (manifest_write(state_dir, NULL, 0) != 0)
        rc = -1;
out:
    free(stores);
    return rc;
}

int trust_refresh(const char *state_dir)
{
    struct store *stores = calloc(MAX_STORES, sizeof *stores);
    struct ca_info ca;
    size_t n;
    int rc = -1;

    if (!stores || ca_info_load(state_dir, &ca) != 0)
        goto out;
    n = manifest_read(state_dir, stores);
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        char err[1024];
        if (stores[i].system)
            snprintf(stores[i].path, sizeof stores[i].path, "%s", ca.system_file);
        if (install_one(&stores[i], &ca, err, sizeof err) == 0) {
            log_info("trust: renewed CA installed in %s %s", stores[i].name, stores[i].path);
        } else {
            log_warn("trust: cannot install the renewed CA in %s %s: %s", stores[i].name, stores[i].path, err);
            rc = -1;
        }
    }
    if (n > 0 && manifest_write(state_dir, stores, n) != 0)
        rc = -1;
out:
    free(stores);
    return rc;
}

/* Facts about every store: the current CA there, older ukey-agent CAs.
 * Sets *missing when a store (the system store only if it was installed
 * into) lacks the current CA. */
static json_t *stores_facts(const char *state_dir, const struct ca_info *ca, int *missing)
{
    struct store *stores = calloc(MAX_STORES, sizeof *stores), *recorded = calloc(MAX_STORES, sizeof *recorded);
    json_t *list = json_array();
    size_t n, n_rec;
    int system_recorded = 0;

    *missing = 0;
    if (!stores || !recorded || !list) {
        free(stores);
        free(recorded);
        json_decref(list);
        return NULL;
    }
    n_rec = manifest_read(state_dir, recorded);
    for (size_t i = 0; i < n_rec; i++)
        system_recorded |= recorded[i].system;
    n = find_stores(stores, 0, 1, ca);
    for (size_t i = 0; i < n; i++) {
        char nicks[MAX_NICKS][64], err[1024] = "";
        int current = 0, old = 0;
        if (stores[i].system) {
            current = system_has(ca);
            old = system_sweep(ca->system_file, 0, err, sizeof err);
        } else {
            int k = nss_agent_nicks(stores[i].path, nicks, MAX_NICKS, err, sizeof err);
            for (int j = 0; j < k; j++) {
                if (strcmp(nicks[j], ca->nick) == 0)
                    current = 1;
                else
                    old++;
            }
        }
        if (!current && (!stores[i].system || system_recorded))
            *missing = 1;
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:b, s:i, s:s?}",
                                              "kind", stores[i].system ? "system" : "nss",
                                              "name", stores[i].name, "path", stores[i].path,
                                              "current_ca", current, "old_cas", old,
                                              "error", err[0] ? err : NULL));
    }
    free(stores);
    free(recorded);
    return list;
}

int trust_status(const char *state_dir, int json, FILE *out)
{
    struct ca_info ca;
    json_t *stores, *s;
    size_t i;
    int missing;

    if (ca_info_load(state_dir, &ca) != 0 || !(stores = stores_facts(state_dir, &ca, &missing)))
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
    struct ca_info ca;
    int missing;
    if (ca_info_load(state_dir, &ca) != 0)
        return NULL;
    return stores_facts(state_dir, &ca, &missing);
}
