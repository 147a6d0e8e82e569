/*
 * The local CA: certificates carry the constraints the issue asks for, the CA
 * key never reaches the disk, identities are reused and renewed. The name
 * constraints are checked by OpenSSL (not mbedTLS, which made them): a
 * test-only leaf for another name, signed by a CA made the same way, must
 * be refused. Runs on Windows too.
 */
#include "check.h"
#include "tmp.h"

#include "localca/localca.h"
#include "util/file.h"
#include "util/rng.h"
#include "util/secret.h"

#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <stdlib.h>
#include <sys/stat.h>

static char dir[1024];

static int write_text(const char *name, const char *text)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return file_write_atomic(p, text, strlen(text), 0644);
}

static char *read_state(const char *name);

static X509 *read_cert(const char *name)
{
    char *pem = read_state(name);
    BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    X509 *c = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    free(pem);
    return c;
}

/* OpenSSL's verdict on dir/leaf under the one anchor dir/ca, as
 * `openssl verify -CAfile` gives it: X509_V_OK or an X509_V_ERR_ code. */
static int openssl_verify(const char *ca, const char *leaf)
{
    X509 *anchor = read_cert(ca), *c = read_cert(leaf);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = -1;
    if (anchor && c && store && ctx && X509_STORE_add_cert(store, anchor) == 1 &&
        X509_STORE_CTX_init(ctx, store, c, NULL) == 1)
        rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(c);
    X509_free(anchor);
    return rc;
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
    char **names;

    CHECK(tmp_dir(dir, sizeof dir, "ukey-test-localca") == 0);
    CHECK(rng_init() == 0);

    /* First run creates; the key is 0600; no file holds a second private key. */
    CHECK(localca_ensure(dir, now, &res, err, sizeof err) == 0 && res == LOCALCA_CREATED);
    snprintf(path, sizeof path, "%s/%s", dir, LOCALCA_KEY_FILE);
#ifndef _WIN32 /* Windows: an ACL of the user and SYSTEM (file_win.c) */
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
#endif
    names = file_list(dir, "", NULL);
    CHECK(names && names[0]);
    for (size_t i = 0; names && names[i]; i++) {
        text = read_state(names[i]);
        CHECK(text != NULL);
        if (text && strcmp(names[i], LOCALCA_KEY_FILE) != 0)
            CHECK(!strstr(text, "PRIVATE KEY"));
        free(text);
    }
    file_list_free(names);
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
        CHECK(openssl_verify("evil-ca.pem", "evil-leaf.pem") == X509_V_ERR_PERMITTED_VIOLATION);
    }
    /* ...and accepts the agent's real leaf. */
    CHECK(openssl_verify(LOCALCA_CA_FILE, LOCALCA_CERT_FILE) == X509_V_OK);
    free(ca_pem);
    free(cert);
    secret_free_str(key);
    localca_ca_destroy(ca);

    /* An unusable state directory (under a file) is a clear error, not a crash. */
    snprintf(path, sizeof path, "%s/%s/state", dir, LOCALCA_CA_FILE);
    CHECK(localca_ensure(path, now, &res, err, sizeof err) == -1 && strstr(err, path));

    CHECK(tmp_remove_tree(dir) == 0);
    rng_free();
    return check_done();
}
