/*
 * The Linux trust stores (trust_store.h; security.md 4.3, TLS-05, TLS-07):
 *   - NSS databases: Chromium's shared DB (~/.pki/nssdb, snap too) and every
 *     Firefox profile that has a cert9.db; trust "C,," = TLS servers only;
 *   - as root, the system store: /usr/local/share/ca-certificates +
 *     update-ca-certificates.
 * certutil and update-ca-certificates run as programs (argv, no shell).
 */
#include "localca/trust_store.h"

#include "util/file.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SYSTEM_DIR "/usr/local/share/ca-certificates"
#define SYSTEM_PREFIX "ukey-agent-"
#define MAX_NICKS 32

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

/* The system store's file for `ca`: named after its fingerprint. */
static void system_file(const struct trust_ca *ca, char *out, size_t outlen)
{
    snprintf(out, outlen, SYSTEM_DIR "/" SYSTEM_PREFIX "%.16s.crt", ca->fp);
}

static size_t add_store(struct trust_store *stores, size_t n, int system, const char *name, const char *path)
{
    if (n >= TRUST_MAX_STORES)
        return n;
    memset(&stores[n], 0, sizeof stores[n]);
    snprintf(stores[n].kind, sizeof stores[n].kind, "%s", system ? "system" : "nss");
    snprintf(stores[n].name, sizeof stores[n].name, "%s", name);
    snprintf(stores[n].path, sizeof stores[n].path, "%s%.4096s", system ? "" : "sql:", path);
    /* The system store is root's choice: missing only when installed into. */
    stores[n].optional = system;
    return n + 1;
}

/* Adds every Firefox profile under `root` that has an NSS database. */
static size_t add_firefox_profiles(struct trust_store *stores, size_t n, const char *root)
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
 * The stores of this user: Chromium's NSS DB (created when `create` and
 * missing, since Chromium reads it once it exists), snap Chromium, Firefox
 * profiles, and the system store when `with_system`.
 */
size_t truststore_find(struct trust_store *stores, int create, int with_system, const struct trust_ca *ca)
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
    if (with_system) {
        system_file(ca, path, sizeof path);
        n = add_store(stores, n, 1, "system", path);
    }
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
        if (strncmp(line, TRUST_NICK_PREFIX, strlen(TRUST_NICK_PREFIX)) == 0 &&
            sscanf(line + strlen(TRUST_NICK_PREFIX), "%16[0-9a-f]", hex) == 1)
            snprintf(nicks[n++], 64, TRUST_NICK_PREFIX "%s", hex);
    }
    return n;
}

/* Removes every ukey-agent CA from NSS database `db` except `keep` (may be
 * NULL); returns how many, or -1. */
static int nss_remove(const char *db, const char *keep, char *err, size_t errlen)
{
    char nicks[MAX_NICKS][64];
    int n = nss_agent_nicks(db, nicks, MAX_NICKS, err, errlen), removed = 0;
    for (int i = 0; i < n; i++) {
        char *argv[] = {"certutil", "-D", "-d", (char *)db, "-n", nicks[i], NULL};
        if (keep && strcmp(nicks[i], keep) == 0)
            continue;
        if (run(argv, err, errlen) != 0)
            return -1;
        removed++;
    }
    return n < 0 ? -1 : removed;
}

static int nss_install(const char *db, const struct trust_ca *ca, char *err, size_t errlen)
{
    char *has[] = {"certutil", "-L", "-d", (char *)db, "-n", (char *)ca->nick, NULL};
    char *add[] = {"certutil", "-A", "-d", (char *)db, "-n", (char *)ca->nick, "-t", "C,,",
                   "-i", (char *)ca->path, NULL};
    if (nss_remove(db, ca->nick, err, errlen) < 0)
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

static int system_install(const struct trust_ca *ca, const char *file, char *err, size_t errlen)
{
    char *pem = file_read_all(ca->path, 64 * 1024, NULL);
    FILE *f;
    int rc = -1;
    if (!pem) {
        snprintf(err, errlen, "cannot read %.900s", ca->path);
        return -1;
    }
    mkdir(SYSTEM_DIR, 0755);
    if (system_sweep(file, 1, err, errlen) < 0)
        goto out;
    if (!(f = fopen(file, "w"))) {
        snprintf(err, errlen, "cannot write %.900s: %s", file, strerror(errno));
        goto out;
    }
    fputs(pem, f);
    if (fclose(f) != 0 || chmod(file, 0644) != 0) {
        snprintf(err, errlen, "cannot write %.900s: %s", file, strerror(errno));
        goto out;
    }
    rc = system_update(0, err, errlen);
out:
    free(pem);
    return rc;
}

/* 1 if the system store file holds exactly the current CA. */
static int system_has(const struct trust_ca *ca, const char *file)
{
    char *a = file_read_all(ca->path, 64 * 1024, NULL), *b = file_read_all(file, 64 * 1024, NULL);
    int same = a && b && strcmp(a, b) == 0;
    free(a);
    free(b);
    return same;
}

int truststore_install(struct trust_store *s, const struct trust_ca *ca, char *err, size_t errlen)
{
    if (strcmp(s->kind, "system") != 0)
        return nss_install(s->path, ca, err, errlen);
    system_file(ca, s->path, sizeof s->path);
    return system_install(ca, s->path, err, errlen);
}

int truststore_remove(const struct trust_store *s, char *err, size_t errlen)
{
    int removed;
    if (strcmp(s->kind, "system") != 0)
        return nss_remove(s->path, NULL, err, errlen);
    removed = system_sweep(NULL, 1, err, errlen);
    if (removed > 0 && system_update(1, err, errlen) != 0)
        return -1;
    return removed;
}

int truststore_probe(const struct trust_store *s, const struct trust_ca *ca, int *current, char *err,
                     size_t errlen)
{
    char nicks[MAX_NICKS][64];
    int k, old = 0;

    *current = 0;
    if (strcmp(s->kind, "system") == 0) {
        *current = system_has(ca, s->path);
        return system_sweep(s->path, 0, err, errlen);
    }
    k = nss_agent_nicks(s->path, nicks, MAX_NICKS, err, errlen);
    for (int j = 0; j < k; j++) {
        if (strcmp(nicks[j], ca->nick) == 0)
            *current = 1;
        else
            old++;
    }
    return k < 0 ? -1 : old;
}
