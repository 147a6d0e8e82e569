/* Per-install local CA and TLS leaf; see localca.h. */
#include "localca/localca.h"

#include "util/clock.h"
#include "util/file.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/mbedtls_compat.h"
#include "util/rng.h"
#include "util/secret.h"

#include <errno.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A time of the leaf (parsed by mbedTLS, the TLS side's library) as time_t. */
static time_t leaf_time(const mbedtls_x509_time *t)
{
    struct tm tm = {0};
    tm.tm_year = t->year - 1900;
    tm.tm_mon = t->mon - 1;
    tm.tm_mday = t->day;
    tm.tm_hour = t->hour;
    tm.tm_min = t->min;
    tm.tm_sec = t->sec;
    return clock_timegm(&tm);
}

#define CERT_BUF 4096

struct localca_ca {
    mbedtls_pk_context key;
    mbedtls_x509_crt cert;
    char subject[160];
};

static void set_err_mbed(char *err, size_t errlen, const char *what, int rc)
{
    char text[200];
    compat_strerror(rc, text, sizeof text);
    snprintf(err, errlen, "%s: %s", what, text);
}

static int gen_p256(mbedtls_pk_context *key)
{
    int rc = mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (rc == 0)
        rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key), rng_random, NULL);
    return rc;
}

static void format_time(time_t t, char out[15])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 15, "%Y%m%d%H%M%S", &tm);
}

/* Random positive serial of 16 bytes (RFC 5280: <= 20 octets, >= 64 bits of
 * entropy; Firefox rejects a repeated serial from one issuer). */
static int random_serial(unsigned char serial[16])
{
    if (rng_random(NULL, serial, 16) != 0)
        return -1;
    serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40);
    return 0;
}

/* Common part of both certificates: version, algorithm, keys, names,
 * serial, validity, key identifiers. */
static int crt_begin(mbedtls_x509write_cert *crt, mbedtls_pk_context *subject_key,
                     mbedtls_pk_context *issuer_key, const char *subject, const char *issuer,
                     time_t not_before, time_t not_after)
{
    unsigned char serial[16];
    char from[15], to[15];
    int rc;
    mbedtls_x509write_crt_set_version(crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(crt, subject_key);
    mbedtls_x509write_crt_set_issuer_key(crt, issuer_key);
    format_time(not_before, from);
    format_time(not_after, to);
    if ((rc = mbedtls_x509write_crt_set_subject_name(crt, subject)) != 0 ||
        (rc = mbedtls_x509write_crt_set_issuer_name(crt, issuer)) != 0 ||
        (rc = random_serial(serial)) != 0 ||
        (rc = compat_x509write_crt_set_serial(crt, serial, sizeof serial)) != 0 ||
        (rc = mbedtls_x509write_crt_set_validity(crt, from, to)) != 0 ||
        (rc = mbedtls_x509write_crt_set_subject_key_identifier(crt)) != 0 ||
        (rc = mbedtls_x509write_crt_set_authority_key_identifier(crt)) != 0)
        return rc;
    return 0;
}

/* mbedTLS has no parser for nameConstraints and refuses a certificate with
 * an unknown critical extension; our own CA carries one. We accept exactly
 * that extension when reading our own files (mbedTLS does not enforce it;
 * browsers and OpenSSL do, which the tests check). */
static int accept_name_constraints(void *ctx, mbedtls_x509_crt const *crt,
                                   mbedtls_x509_buf const *oid, int critical,
                                   const unsigned char *p, const unsigned char *end)
{
    (void)ctx;
    (void)crt;
    (void)critical;
    (void)p;
    (void)end;
    return MBEDTLS_OID_CMP(MBEDTLS_OID_NAME_CONSTRAINTS, oid) == 0 ? 0 : -1;
}

static int parse_der(mbedtls_x509_crt *crt, const unsigned char *der, size_t len)
{
    return mbedtls_x509_crt_parse_der_with_ext_cb(crt, der, len, 1, accept_name_constraints, NULL);
}

/* Parses the first PEM certificate of file `path` into `crt`. */
static int parse_pem_file(mbedtls_x509_crt *crt, const char *path)
{
    char *text = file_read_all(path, 64 * 1024, NULL);
    size_t used = 0, der_len = 0;
    const unsigned char *der;
    mbedtls_pem_context pem;
    int rc;
    if (!text)
        return MBEDTLS_ERR_X509_FILE_IO_ERROR;
    mbedtls_pem_init(&pem);
    rc = mbedtls_pem_read_buffer(&pem, "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----",
                                 (const unsigned char *)text, NULL, 0, &used);
    if (rc == 0 && (der = compat_pem_der(&pem, &der_len)) != NULL)
        rc = parse_der(crt, der, der_len);
    mbedtls_pem_free(&pem);
    free(text);
    return rc;
}

/* Writes the certificate, signed with `issuer_key`, as DER and parses it into `out`. */
static int crt_finish(mbedtls_x509write_cert *crt, mbedtls_pk_context *issuer_key, mbedtls_x509_crt *out)
{
    unsigned char buf[CERT_BUF];
    int n = compat_x509write_crt_der(crt, issuer_key, buf, sizeof buf, rng_random, NULL);
    if (n < 0)
        return n;
    return parse_der(out, buf + sizeof buf - n, (size_t)n);
}

static char *der_to_pem(const unsigned char *der, size_t len)
{
    size_t olen = 0;
    char *pem;
    mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n", der,
                             len, NULL, 0, &olen);
    if (!(pem = malloc(olen)))
        return NULL;
    if (mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n",
                                 der, len, (unsigned char *)pem, olen, &olen) != 0) {
        free(pem);
        return NULL;
    }
    return pem;
}

int localca_ca_create(time_t now, struct localca_ca **out, char *err, size_t errlen)
{
    static const char *const dns[] = {"localhost"};
    static const struct x509ext_ip ranges[] = {
        {{127, 0, 0, 1, 255, 255, 255, 255}, 8},
        {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
          255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255}, 32},
    };
    struct localca_ca *ca;
    mbedtls_x509write_cert crt;
    unsigned char ext[512], *val, tag[4];
    int rc, n;

    *out = NULL;
    if (!(ca = calloc(1, sizeof *ca))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    mbedtls_pk_init(&ca->key);
    mbedtls_x509_crt_init(&ca->cert);
    mbedtls_x509write_crt_init(&crt);
    /* A short random tag makes each install's CA name distinct in trust stores. */
    if ((rc = rng_random(NULL, tag, sizeof tag)) != 0)
        goto fail;
    snprintf(ca->subject, sizeof ca->subject,
             "CN=ukey-agent local CA %02x%02x%02x%02x,O=ukey-agent,OU=localhost only", tag[0],
             tag[1], tag[2], tag[3]);
    if ((rc = gen_p256(&ca->key)) != 0 ||
        (rc = crt_begin(&crt, &ca->key, &ca->key, ca->subject, ca->subject, now - 3600,
                        now - 3600 + (time_t)(LOCALCA_LEAF_DAYS + 5) * 86400)) != 0 ||
        (rc = mbedtls_x509write_crt_set_basic_constraints(&crt, 1, 0)) != 0 ||
        (rc = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_KEY_CERT_SIGN |
                                                            MBEDTLS_X509_KU_CRL_SIGN)) != 0)
        goto fail;
    n = x509ext_name_constraints(ext, sizeof ext, dns, 1, ranges, 2, &val);
    if (n < 0 || (rc = mbedtls_x509write_crt_set_extension(
                      &crt, MBEDTLS_OID_NAME_CONSTRAINTS, MBEDTLS_OID_SIZE(MBEDTLS_OID_NAME_CONSTRAINTS),
                      1, val, (size_t)n)) != 0) {
        rc = n < 0 ? n : rc;
        goto fail;
    }
    if ((rc = crt_finish(&crt, &ca->key, &ca->cert)) != 0)
        goto fail;
    mbedtls_x509write_crt_free(&crt);
    *out = ca;
    return 0;
fail:
    set_err_mbed(err, errlen, "cannot create the local CA", rc);
    mbedtls_x509write_crt_free(&crt);
    localca_ca_destroy(ca);
    return -1;
}

int localca_issue_leaf(const struct localca_ca *ca, time_t now, const char *const *dns,
                       size_t n_dns, const struct x509ext_ip *ips, size_t n_ips,
                       char **cert_pem, char **key_pem, char *err, size_t errlen)
{
    mbedtls_pk_context key;
    mbedtls_x509write_cert crt;
    mbedtls_x509_crt parsed;
    unsigned char ext[1024], *val;
    unsigned char keybuf[1024];
    int rc, n;

    *cert_pem = *key_pem = NULL;
    mbedtls_pk_init(&key);
    mbedtls_x509write_crt_init(&crt);
    mbedtls_x509_crt_init(&parsed);
    if ((rc = gen_p256(&key)) != 0 ||
        (rc = crt_begin(&crt, &key, (mbedtls_pk_context *)&ca->key, "CN=localhost,O=ukey-agent",
                        ca->subject, now - 3600,
                        now - 3600 + (time_t)LOCALCA_LEAF_DAYS * 86400)) != 0 ||
        (rc = mbedtls_x509write_crt_set_basic_constraints(&crt, 0, -1)) != 0 ||
        (rc = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) != 0)
        goto out;
    n = x509ext_san(ext, sizeof ext, dns, n_dns, ips, n_ips, &val);
    if (n < 0 || (rc = mbedtls_x509write_crt_set_extension(
                      &crt, MBEDTLS_OID_SUBJECT_ALT_NAME, MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
                      0, val, (size_t)n)) != 0) {
        rc = n < 0 ? n : rc;
        goto out;
    }
    n = x509ext_eku_server_auth(ext, sizeof ext, &val);
    if (n < 0 || (rc = mbedtls_x509write_crt_set_extension(
                      &crt, MBEDTLS_OID_EXTENDED_KEY_USAGE, MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                      1, val, (size_t)n)) != 0) {
        rc = n < 0 ? n : rc;
        goto out;
    }
    if ((rc = crt_finish(&crt, (mbedtls_pk_context *)&ca->key, &parsed)) != 0)
        goto out;
    if ((rc = mbedtls_pk_write_key_pem(&key, keybuf, sizeof keybuf)) != 0)
        goto out;
    *cert_pem = der_to_pem(parsed.raw.p, parsed.raw.len);
    *key_pem = strdup((char *)keybuf);
    if (!*cert_pem || !*key_pem) {
        free(*cert_pem);
        secret_free_str(*key_pem);
        *cert_pem = *key_pem = NULL;
        rc = MBEDTLS_ERR_X509_ALLOC_FAILED;
    }
out:
    if (rc != 0)
        set_err_mbed(err, errlen, "cannot issue the local TLS certificate", rc);
    secret_wipe(keybuf, sizeof keybuf);
    mbedtls_pk_free(&key);
    mbedtls_x509write_crt_free(&crt);
    mbedtls_x509_crt_free(&parsed);
    return rc == 0 ? 0 : -1;
}

char *localca_ca_pem(const struct localca_ca *ca)
{
    return der_to_pem(ca->cert.raw.p, ca->cert.raw.len);
}

void localca_ca_destroy(struct localca_ca *ca)
{
    if (!ca)
        return;
    mbedtls_pk_free(&ca->key); /* mbedTLS zeroizes the key material */
    mbedtls_x509_crt_free(&ca->cert);
    secret_wipe(ca, sizeof *ca);
    free(ca);
}

/* Files ---------------------------------------------------------------- */

static int path_join(char *out, size_t len, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Writes `data` to dir/name atomically (util/file.h), with `mode`. */
static int write_file(const char *dir, const char *name, const char *data, mode_t mode,
                      char *err, size_t errlen)
{
    char path[4096];
    if (path_join(path, sizeof path, dir, name) != 0) {
        snprintf(err, errlen, "state directory path too long");
        return -1;
    }
    if (file_write_atomic(path, data, strlen(data), mode) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int make_state_dir(const char *dir, char *err, size_t errlen)
{
    if (file_mkdirs(dir) != 0) {
        snprintf(err, errlen, "cannot create state directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* 1 if the three files exist and belong together and the leaf has more than
 * LOCALCA_RENEW_DAYS to live; 0 if they must be replaced (with the reason in
 * `why`). */
/* 1 if `c` was written by a version that put a NULL parameter after
 * ecdsa-with-SHA256 (mbedTLS 2.28's encoding), which Chromium refuses. */
static int ecdsa_null_param(const mbedtls_x509_crt *c)
{
    static const unsigned char bad[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x05, 0x00};
    for (size_t i = 0; i + sizeof bad <= c->raw.len; i++)
        if (memcmp(c->raw.p + i, bad, sizeof bad) == 0)
            return 1;
    return 0;
}

static int identity_usable(const char *dir, time_t now, char *why, size_t whylen)
{
    char ca_path[4096], crt_path[4096], key_path[4096];
    mbedtls_x509_crt ca, leaf;
    mbedtls_pk_context key;
    uint32_t flags = 0;
    int ok = 0, rc;

    mbedtls_x509_crt_init(&ca);
    mbedtls_x509_crt_init(&leaf);
    mbedtls_pk_init(&key);
    if (path_join(ca_path, sizeof ca_path, dir, LOCALCA_CA_FILE) ||
        path_join(crt_path, sizeof crt_path, dir, LOCALCA_CERT_FILE) ||
        path_join(key_path, sizeof key_path, dir, LOCALCA_KEY_FILE)) {
        snprintf(why, whylen, "state directory path too long");
        goto out;
    }
    if (!file_exists(ca_path) && !file_exists(crt_path) && !file_exists(key_path)) {
        snprintf(why, whylen, "none");
        goto out;
    }
    if ((rc = parse_pem_file(&ca, ca_path)) != 0 || (rc = parse_pem_file(&leaf, crt_path)) != 0) {
        snprintf(why, whylen, "a certificate file is missing or unreadable");
        goto out;
    }
    if ((rc = compat_pk_parse_keyfile(&key, key_path, rng_random, NULL)) != 0 ||
        compat_pk_check_pair(&leaf.pk, &key, rng_random, NULL) != 0) {
        snprintf(why, whylen, "server.key is missing or does not match server.crt");
        goto out;
    }
    if (mbedtls_x509_crt_verify(&leaf, &ca, NULL, "localhost", &flags, NULL, NULL) != 0 &&
        (flags & ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE)) != 0) {
        snprintf(why, whylen, "server.crt is not issued by ca.crt (flags 0x%x)", (unsigned)flags);
        goto out;
    }
    if (ecdsa_null_param(&ca) || ecdsa_null_param(&leaf)) {
        snprintf(why, whylen, "the certificates were written in an encoding browsers refuse (ECDSA with NULL)");
        goto out;
    }
    if (leaf_time(&leaf.valid_to) - now < (time_t)LOCALCA_RENEW_DAYS * 86400) {
        snprintf(why, whylen, "the TLS certificate expires within %d days", LOCALCA_RENEW_DAYS);
        goto out;
    }
    if (leaf_time(&leaf.valid_from) > now) {
        snprintf(why, whylen, "the TLS certificate is not valid yet (clock moved back?)");
        goto out;
    }
    ok = 1;
out:
    mbedtls_x509_crt_free(&ca);
    mbedtls_x509_crt_free(&leaf);
    mbedtls_pk_free(&key);
    return ok;
}

int localca_ensure(const char *state_dir, time_t now, enum localca_result *result, char *err,
                   size_t errlen)
{
    static const char *const dns[] = {"localhost"};
    static const struct x509ext_ip ips[] = {
        {{127, 0, 0, 1}, 4},
        {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 16},
    };
    struct localca_ca *ca = NULL;
    char *ca_pem = NULL, *cert_pem = NULL, *key_pem = NULL, why[160];
    int rc = -1;

    if (make_state_dir(state_dir, err, errlen) != 0)
        return -1;
    if (identity_usable(state_dir, now, why, sizeof why)) {
        *result = LOCALCA_REUSED;
        return 0;
    }
    *result = strcmp(why, "none") == 0 ? LOCALCA_CREATED : LOCALCA_RENEWED;
    if (*result == LOCALCA_RENEWED)
        log_info("making a new local CA and TLS certificate: %s", why);
    if (localca_ca_create(now, &ca, err, errlen) != 0)
        return -1;
    rc = localca_issue_leaf(ca, now, dns, 1, ips, 2, &cert_pem, &key_pem, err, errlen);
    if (rc == 0 && !(ca_pem = localca_ca_pem(ca))) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    /* The CA key is not needed any more: nobody can issue another certificate. */
    localca_ca_destroy(ca);
    if (rc == 0)
        rc = write_file(state_dir, LOCALCA_KEY_FILE, key_pem, 0600, err, errlen);
    if (rc == 0)
        rc = write_file(state_dir, LOCALCA_CERT_FILE, cert_pem, 0644, err, errlen);
    if (rc == 0)
        rc = write_file(state_dir, LOCALCA_CA_FILE, ca_pem, 0644, err, errlen);
    free(ca_pem);
    free(cert_pem);
    secret_free_str(key_pem);
    return rc;
}

int localca_leaf_not_after(const char *state_dir, time_t *not_after)
{
    char path[4096];
    mbedtls_x509_crt leaf;
    int rc = -1;
    mbedtls_x509_crt_init(&leaf);
    if (path_join(path, sizeof path, state_dir, LOCALCA_CERT_FILE) == 0 &&
        parse_pem_file(&leaf, path) == 0) {
        *not_after = leaf_time(&leaf.valid_to);
        rc = 0;
    }
    mbedtls_x509_crt_free(&leaf);
    return rc;
}

int localca_fingerprint_file(const char *path, char out[65])
{
    mbedtls_x509_crt crt;
    unsigned char digest[32];
    int rc;
    mbedtls_x509_crt_init(&crt);
    rc = parse_pem_file(&crt, path);
    if (rc == 0)
        rc = compat_sha256(crt.raw.p, crt.raw.len, digest);
    mbedtls_x509_crt_free(&crt);
    if (rc != 0)
        return -1;
    hex_encode(out, digest, 32, 0);
    return 0;
}
