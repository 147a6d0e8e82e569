/*
 * The local CA: certificates carry the constraints the issue asks for, the CA
 * key never reaches the disk, identities are reused and renewed. The name
 * constraints are checked by OpenSSL: a test-only leaf for another name,
 * signed by a CA made the same way, must be refused.
 */
#include "check.h"

#include "localca/localca.h"
#include "util/file.h"
#include "util/rng.h"
#include "util/secret.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/ukey-test-localca-XXXXXX";

static int write_text(const char *name, const char *text)
{
    char p[4096];
    FILE *f;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (!(f = fopen(p, "w")))
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* Output of `openssl verify -CAfile dir/ca dir/leaf` (stdout + stderr). */
static char *openssl_verify(const char *ca, const char *leaf)
{
    char cmd[8400], *out = calloc(1, 8192);
    size_t used = 0, n;
    FILE *p;
    snprintf(cmd, sizeof cmd, "openssl verify -CAfile '%s/%s' '%s/%s' 2>&1", dir, ca, dir, leaf);
    if (!out || !(p = popen(cmd, "r"))) {
        free(out);
        return NULL;
    }
    while (used < 8191 && (n = fread(out + used, 1, 8191 - used, p)) > 0)
        used += n;
    pclose(p);
    return out;
}

static char *read_state(const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return file_read_all(p, 1 << 20, NULL);
}

int main(void)
{
    static const char *const evil_dns[] = {"www.gov.example"};
    enum localca_result res;
    struct localca_ca *ca = NULL;
    char err[512], fp1[65], fp2[65], path[4096];
    char *cert = NULL, *key = NULL, *ca_pem, *text;
    time_t now = time(NULL), not_after;
    struct stat st;
    DIR *d;
    struct dirent *ent;

    CHECK(mkdtemp(dir) != NULL);
    CHECK(rng_init() == 0);

    /* First run creates; the key is 0600; no file holds a second private key. */
    CHECK(localca_ensure(dir, now, &res, err, sizeof err) == 0 && res == LOCALCA_CREATED);
    snprintf(path, sizeof path, "%s/%s", dir, LOCALCA_KEY_FILE);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    d = opendir(dir);
    while (d && (ent = readdir(d)) != NULL) {
        if (ent->d_name[0] == '.')
            continue;
        text = read_state(ent->d_name);
        CHECK(text != NULL);
        if (text && strcmp(ent->d_name, LOCALCA_KEY_FILE) != 0)
            CHECK(!strstr(text, "PRIVATE KEY"));
        free(text);
    }
    if (d)
        closedir(d);
    CHECK(localca_leaf_not_after(dir, &not_after) == 0);
    CHECK(not_after - now <= 825L * 86400 && not_after - now > 800L * 86400);

    /* Second run reuses the same identity. */
    snprintf(path, sizeof path, "%s/%s", dir, LOCALCA_CA_FILE);
    CHECK(localca_fingerprint_file(path, fp1) == 0);
    CHECK(localca_ensure(dir, now + 86400, &res, err, sizeof err) == 0 && res == LOCALCA_REUSED);
    CHECK(localca_fingerprint_file(path, fp2) == 0 && strcmp(fp1, fp2) == 0);

    /* Within 30 days of the leaf's end: a new CA and leaf. */
    CHECK(localca_ensure(dir, not_after - 29L * 86400, &res, err, sizeof err) == 0 &&
          res == LOCALCA_RENEWED);
    CHECK(localca_fingerprint_file(path, fp2) == 0 && strcmp(fp1, fp2) != 0);

    /* Broken files (a truncated certificate, a key from elsewhere) are replaced. */
    CHECK(write_text(LOCALCA_CERT_FILE, "-----BEGIN CERTIFICATE-----\nMIIB\n") == 0);
    CHECK(localca_ensure(dir, now, &res, err, sizeof err) == 0 && res == LOCALCA_RENEWED);
    CHECK(localca_ensure(dir, now, &res, err, sizeof err) == 0 && res == LOCALCA_REUSED);

    /* Test-only: a leaf for a name outside the constraints, for OpenSSL to refuse. */
    CHECK(localca_ca_create(now, &ca, err, sizeof err) == 0);
    CHECK(localca_issue_leaf(ca, now, evil_dns, 1, NULL, 0, &cert, &key, err, sizeof err) == 0);
    ca_pem = localca_ca_pem(ca);
    CHECK(ca_pem && cert && key && strstr(key, "PRIVATE KEY"));
    if (ca_pem && cert) {
        CHECK(write_text("evil-ca.pem", ca_pem) == 0 && write_text("evil-leaf.pem", cert) == 0);
        /* OpenSSL enforces the CA's name constraints on a leaf for another name... */
        text = openssl_verify("evil-ca.pem", "evil-leaf.pem");
        CHECK(text && strstr(text, "permitted subtree violation") && !strstr(text, ": OK"));
        free(text);
    }
    /* ...and accepts the agent's real leaf. */
    text = openssl_verify(LOCALCA_CA_FILE, LOCALCA_CERT_FILE);
    CHECK(text && strstr(text, ": OK"));
    free(text);
    free(ca_pem);
    free(cert);
    secret_free_str(key);
    localca_ca_destroy(ca);

    /* An unusable state directory is a clear error, not a crash. */
    CHECK(localca_ensure("/proc/ukey-no-such-dir", now, &res, err, sizeof err) == -1 &&
          strstr(err, "/proc/ukey-no-such-dir"));

    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    CHECK(system(path) == 0);
    rng_free();
    return check_done();
}
