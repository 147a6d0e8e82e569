/* One certificate's validity, chain and revocation; see certs.h. */
#include "diag/certs.h"

#include "profile/profile.h"
#include "util/clock.h"
#include "util/file.h"
#include "util/hex.h"
#include "util/mbedtls_compat.h"
#include "util/rng.h"
#include "x509/cert.h"
#include "x509/crl.h"
#include "x509/crt.h"
#include "x509/ext.h"
#include "x509/fetch.h"
#include "x509/ocsp.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHAIN 4

/* One fetch of this run, kept so that certificates sharing a CRL or an
 * issuer fetch it once. */
struct memo {
    struct memo *next;
    char *url;
    int rc;
    struct x509_fetch_res res;
    char err[256];
};

struct cert_env {
    struct cert_env_options opt;
    STACK_OF(X509) *anchors;
    X509_STORE *store;          /* the anchors, for X509_verify_cert */
    struct memo *memo;
    time_t server_date;
};

struct cert_env *cert_env_new(const struct cert_env_options *opt)
{
    struct cert_env *env = calloc(1, sizeof *env);
    if (!env)
        return NULL;
    env->opt = *opt;
    if (!(env->anchors = sk_X509_new_null()) || !(env->store = X509_STORE_new())) {
        cert_env_free(env);
        return NULL;
    }
    /* A file or directory that does not parse adds no anchors; a directory
     * may hold a README beside the certificates. */
    if (opt->ca_file)
        x509_stack_add_file(env->anchors, opt->ca_file);
    if (opt->ca_dir)
        x509_stack_add_dir(env->anchors, opt->ca_dir);
    profiles_add_anchors(env->anchors); /* the deployment profiles' own */
    for (int i = 0; i < sk_X509_num(env->anchors); i++)
        X509_STORE_add_cert(env->store, sk_X509_value(env->anchors, i)); /* a duplicate is no harm */
    ERR_clear_error();
    return env;
}

void cert_env_free(struct cert_env *env)
{
    if (!env)
        return;
    sk_X509_pop_free(env->anchors, X509_free);
    X509_STORE_free(env->store);
    while (env->memo) {
        struct memo *m = env->memo;
        env->memo = m->next;
        free(m->url);
        free(m->res.body);
        free(m);
    }
    free(env);
}

int cert_env_has_anchors(const struct cert_env *env) { return sk_X509_num(env->anchors) > 0; }
time_t cert_env_server_date(const struct cert_env *env) { return env->server_date; }

static void note_date(struct cert_env *env, time_t date)
{
    if (date > env->server_date)
        env->server_date = date;
}

/* A GET through the run's memo. NULL only when out of memory. */
static const struct memo *get(struct cert_env *env, const char *url)
{
    struct memo *m;
    struct x509_fetch_req req = {.url = url, .timeout_s = env->opt.fetch_timeout_s};
    for (m = env->memo; m; m = m->next)
        if (strcmp(m->url, url) == 0)
            return m;
    if (!(m = calloc(1, sizeof *m)) || !(m->url = strdup(url))) {
        free(m);
        return NULL;
    }
    m->rc = x509_fetch(&req, &m->res, m->err, sizeof m->err);
    note_date(env, m->res.date);
    m->next = env->memo;
    env->memo = m;
    return m;
}

/* ---- the on-disk cache of verified answers ---- */

static int cache_path(const struct cert_env *env, const char *kind, const unsigned char *key, size_t key_len,
                      char *path, size_t cap)
{
    unsigned char h[32];
    char hex[65];
    if (!env->opt.cache_dir || compat_sha256(key, key_len, h) != 0)
        return -1;
    hex_encode(hex, h, 32, 0);
    return snprintf(path, cap, "%s/%s-%s", env->opt.cache_dir, kind, hex) < (int)cap ? 0 : -1;
}

/* The cached answer for `key` while it is fresh (malloc'd), else NULL. */
static unsigned char *cache_get(const struct cert_env *env, const char *kind, const unsigned char *key,
                                size_t key_len, size_t *len)
{
    char path[4200], *data;
    size_t n;
    long long expires;
    int head = 0;
    if (cache_path(env, kind, key, key_len, path, sizeof path) != 0 ||
        !(data = file_read_all(path, X509_FETCH_MAX + 64, &n)))
        return NULL;
    if (sscanf(data, "ukey-cache 1 %lld\n%n", &expires, &head) != 1 || head <= 0 || (time_t)expires <= time(NULL)) {
        free(data);
        file_remove(path); /* stale or damaged: gone */
        return NULL;
    }
    memmove(data, data + head, n - (size_t)head);
    *len = n - (size_t)head;
    data[*len] = '\0'; /* a PEM CRL is parsed as a string */
    return (unsigned char *)data;
}

static void cache_put(const struct cert_env *env, const char *kind, const unsigned char *key, size_t key_len,
                      time_t expires, const unsigned char *body, size_t len)
{
    char path[4200], *data;
    int hn;
    if (expires <= time(NULL) || cache_path(env, kind, key, key_len, path, sizeof path) != 0 ||
        file_mkdirs(env->opt.cache_dir) != 0 || !(data = malloc(64 + len)))
        return;
    hn = snprintf(data, 64, "ukey-cache 1 %lld\n", (long long)expires);
    memcpy(data + hn, body, len);
    file_write_atomic(path, data, (size_t)hn + len, 0600);
    free(data);
}

/* ---- chain ---- */

/* The certificate in `list` (may be NULL) or the anchors that issued `c`
 * (name and signature, any algorithm), NULL if none. */
static X509 *find_issuer(const struct cert_env *env, STACK_OF(X509) *list, X509 *c)
{
    for (int pass = 0; pass < 2; pass++) {
        STACK_OF(X509) *in = pass ? env->anchors : list;
        for (int k = 0; k < sk_X509_num(in); k++) {
            X509 *i = sk_X509_value(in, k);
            if (i != c && x509_issued(i, c))
                return i;
        }
    }
    return NULL;
}

/* 1 if `c` is one of the anchors (the same certificate). */
static int is_anchor(const struct cert_env *env, X509 *c)
{
    for (int k = 0; k < sk_X509_num(env->anchors); k++)
        if (X509_cmp(sk_X509_value(env->anchors, k), c) == 0)
            return 1;
    return 0;
}

/* Completes `chain` (the certificate first) with intermediates from AIA
 * caIssuers until an anchor issues the last one; returns how many were
 * fetched, with what went wrong in `note`. */
static int complete_chain(struct cert_env *env, STACK_OF(X509) *chain, char *note, size_t cap)
{
    int fetched = 0;
    for (int depth = 0; depth < MAX_CHAIN; depth++) {
        X509 *top = sk_X509_value(chain, 0), *up;
        struct x509_urls urls;
        const struct memo *m;
        /* Walk up what we have. */
        for (int guard = 0; guard < 8 && (up = find_issuer(env, chain, top)) && up != top; guard++) {
            if (is_anchor(env, up))
                return fetched;
            top = up;
        }
        if (is_anchor(env, top) || find_issuer(env, NULL, top))
            return fetched;
        if (x509_cert_urls(top, &urls) != 0 || urls.n_ca_issuers == 0)
            return fetched;
        if (!(m = get(env, urls.ca_issuers[0])) || m->rc != 0) {
            snprintf(note, cap, "the issuer certificate could not be fetched (%.200s)", m ? m->err : "out of memory");
            return fetched;
        }
        if (m->res.http_code != 200 || x509_stack_add(chain, m->res.body, m->res.len) <= 0) {
            snprintf(note, cap, "%.200s does not answer with a certificate (HTTP %ld)", urls.ca_issuers[0],
                     m->res.http_code);
            return fetched;
        }
        fetched++;
    }
    return fetched;
}

static const char *iso(time_t t, char buf[32])
{
    struct tm tm;
    if (!t || !gmtime_r(&t, &tm))
        return NULL;
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static void set_str(json_t *o, const char *key, const char *value)
{
    if (value && *value)
        json_object_set_new(o, key, json_string(value));
}

static const char *const verdicts[] = {"pass", "warn", "fail", "skip"};

/* ---- revocation ---- */

/* Judges the CRL at `url` for `crt`: published and revoked verdicts. */
static void judge_crl(struct cert_env *env, X509 *crt, X509 *issuer, const char *url, json_t *ev, enum diag_status *published, enum diag_status *revoked)
{
    const struct memo *m = NULL;
    unsigned char *cached = NULL;
    const unsigned char *body;
    size_t len = 0;
    struct crl_check c;
    char note[300] = "", t1[32], t2[32];

    *published = DIAG_WARN;
    *revoked = DIAG_SKIP;
    set_str(ev, "url", url);
    if ((cached = cache_get(env, "crl", (const unsigned char *)url, strlen(url), &len)))
        body = cached, json_object_set_new(ev, "cached", json_true());
    else if (!(m = get(env, url)))
        goto out;
    else if (m->rc != 0) {
        snprintf(note, sizeof note, "the CRL server did not answer: %.250s", m->err);
        goto out;
    } else if (m->res.http_code == 404 || m->res.len == 0) {
        snprintf(note, sizeof note, "no CRL is published there yet (HTTP %ld, %zu bytes)", m->res.http_code,
                 m->res.len);
        json_object_set_new(ev, "not_published", json_true());
        goto out;
    } else if (m->res.http_code != 200) {
        snprintf(note, sizeof note, "the CRL server answered HTTP %ld", m->res.http_code);
        goto out;
    } else {
        body = m->res.body, len = m->res.len;
    }
    crl_check(body, len, crt, issuer, time(NULL), &c);
    if (c.finding == CRL_NOT_A_CRL) {
        snprintf(note, sizeof note, "the address answers with something that is not a CRL (%zu bytes)", len);
        goto out;
    }
    *published = DIAG_PASS;
    set_str(ev, "this_update", iso(c.this_update, t1));
    set_str(ev, "next_update", iso(c.next_update, t2));
    switch (c.finding) {
    case CRL_NO_ISSUER:
        snprintf(note, sizeof note, "the CRL cannot be verified: the certificate's issuer is unknown");
        break;
    case CRL_OTHER_ISSUER:
        *published = DIAG_WARN;
        snprintf(note, sizeof note, "the CRL there is from another issuer");
        break;
    case CRL_BAD_SIGNATURE:
        *published = DIAG_WARN;
        snprintf(note, sizeof note, "the CRL's signature does not verify with the issuer's key");
        break;
    case CRL_REVOKED:
        *revoked = DIAG_FAIL;
        set_str(ev, "revoked_at", iso(c.revoked_at, t1));
        snprintf(note, sizeof note, "the CRL lists this certificate as revoked");
        break;
    case CRL_FUTURE:
        *published = DIAG_WARN;
        snprintf(note, sizeof note, "the CRL is dated in the future: check the computer's clock");
        break;
    case CRL_STALE:
        *published = DIAG_WARN;
        snprintf(note, sizeof note, "the CRL is stale: its next update was due %s", t2);
        break;
    case CRL_GOOD:
    case CRL_NOT_A_CRL:
        *revoked = DIAG_PASS;
        snprintf(note, sizeof note, "the CRL is signed by the issuer, fresh, and does not list this certificate");
        if (!cached && c.next_update)
            cache_put(env, "crl", (const unsigned char *)url, strlen(url), c.next_update, body, len);
        break;
    }
out:
    if (!m && !cached && !note[0])
        snprintf(note, sizeof note, "out of memory");
    set_str(ev, "note", note);
    json_object_set_new(ev, "verdict", json_string(*revoked == DIAG_FAIL ? "revoked" : verdicts[*published]));
    free(cached);
}

/* Asks the OCSP responder at `url` about `crt`: pass (good), fail
 * (revoked), warn (unknown to the responder) or skip (no valid answer). */
static enum diag_status judge_ocsp(struct cert_env *env, X509 *crt, X509 *issuer, const char *url, json_t *ev)
{
    unsigned char buf[1024], *req_der, nonce[OCSP_NONCE_LEN], key[X509_URL_LEN + 1024], *cached = NULL, *name = NULL;
    unsigned char serial[X509_SERIAL_MAX];
    size_t req_len, key_len, len = 0, serial_len;
    int name_len;
    struct x509_fetch_req req = {.url = url, .content_type = "Content-Type: application/ocsp-request",
                                 .timeout_s = env->opt.fetch_timeout_s};
    struct x509_fetch_res res = {0};
    struct ocsp_result r;
    enum diag_status st = DIAG_SKIP;
    char note[300] = "", t[32];
    int ok;

    set_str(ev, "url", url);
    if (!issuer) {
        set_str(ev, "note", "not asked: the certificate's issuer is unknown");
        json_object_set_new(ev, "verdict", json_string("skip"));
        return DIAG_SKIP;
    }
    /* The cache key: the responder and the certificate (issuer + serial). */
    key_len = (size_t)snprintf((char *)key, sizeof key, "%s|", url);
    name_len = i2d_X509_NAME(X509_get_subject_name(issuer), &name);
    serial_len = x509_serial_raw(crt, serial);
    if (name_len <= 0 || !serial_len || key_len + (size_t)name_len + serial_len > sizeof key)
        key_len = 0;
    else {
        memcpy(key + key_len, name, (size_t)name_len);
        key_len += (size_t)name_len;
        memcpy(key + key_len, serial, serial_len);
        key_len += serial_len;
    }
    OPENSSL_free(name);
    if (key_len && (cached = cache_get(env, "ocsp", key, key_len, &len))) {
        json_object_set_new(ev, "cached", json_true());
        ok = ocsp_check(cached, len, crt, issuer, NULL, time(NULL), &r, note, sizeof note) == 0;
    } else if (rng_random(NULL, nonce, sizeof nonce) != 0 ||
               ocsp_request(crt, issuer, nonce, buf, sizeof buf, &req_der, &req_len) != 0) {
        snprintf(note, sizeof note, "the OCSP request could not be built");
        ok = 0;
    } else {
        req.post = req_der;
        req.post_len = req_len;
        if (x509_fetch(&req, &res, note, sizeof note) != 0) {
            ok = 0;
        } else if (res.http_code != 200) {
            snprintf(note, sizeof note, "the OCSP responder answered HTTP %ld", res.http_code);
            ok = 0;
        } else {
            ok = ocsp_check(res.body, res.len, crt, issuer, nonce, time(NULL), &r, note, sizeof note) == 0;
            if (ok)
                json_object_set_new(ev, "nonce", json_string(r.nonce_matched ? "matched" : "not returned"));
            if (ok && key_len && r.next_update)
                cache_put(env, "ocsp", key, key_len, r.next_update, res.body, res.len);
        }
        note_date(env, res.date);
    }
    if (ok) {
        static const char *const names[] = {"good", "revoked", "unknown"};
        st = r.status == OCSP_GOOD ? DIAG_PASS : r.status == OCSP_REVOKED ? DIAG_FAIL : DIAG_WARN;
        json_object_set_new(ev, "status", json_string(names[r.status]));
        set_str(ev, "this_update", iso(r.this_update, t));
        set_str(ev, "next_update", iso(r.next_update, t));
        set_str(ev, "revoked_at", iso(r.revoked_at, t));
        json_object_set_new(ev, "responder", json_string(r.delegated ? "delegated" : "issuer"));
        snprintf(note, sizeof note, "%s", r.status == OCSP_GOOD      ? "the responder says the certificate is good"
                                          : r.status == OCSP_REVOKED ? "the responder says the certificate is revoked"
                                                                     : "the responder does not know this certificate");
    }
    set_str(ev, "note", note);
    json_object_set_new(ev, "verdict", json_string(ok ? verdicts[st] : "warn"));
    free(res.body);
    free(cached);
    return ok ? st : DIAG_SKIP;
}

/* Combines CRL and OCSP: revoked by either is revoked; a certificate the
 * responder does not know is suspect; else good by either is good. */
static enum diag_status combine(enum diag_status crl, enum diag_status ocsp)
{
    if (crl == DIAG_FAIL || ocsp == DIAG_FAIL)
        return DIAG_FAIL;
    if (ocsp == DIAG_WARN)
        return DIAG_WARN;
    return crl == DIAG_PASS || ocsp == DIAG_PASS ? DIAG_PASS : DIAG_SKIP;
}

/* The chain verdict: X509_verify_cert from `chain`'s first certificate to
 * the anchors, through the others. Validity has its own verdict, so times
 * are not checked here; an anchor need not be a root (PARTIAL_CHAIN). */
static enum diag_status verify_chain(const struct cert_env *env, STACK_OF(X509) *chain, char *note, size_t cap)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    enum diag_status st = DIAG_FAIL;
    if (!ctx || !X509_STORE_CTX_init(ctx, env->store, sk_X509_value(chain, 0), chain)) {
        snprintf(note, cap, "out of memory");
    } else {
        X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME | X509_V_FLAG_PARTIAL_CHAIN);
        if (X509_verify_cert(ctx) == 1)
            st = DIAG_PASS;
        else if (!note[0])
            snprintf(note, cap, "%s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return st;
}

void cert_look(struct cert_env *env, const unsigned char *der, size_t len, STACK_OF(X509) *intermediates,
               struct cert_look *out)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *crt = x509_from_der(der, len), *issuer;
    struct x509_urls urls;
    json_t *ev = json_object(), *chain_ev = json_object(), *crl_ev = json_object(), *ocsp_ev = NULL;
    time_t now = time(NULL), from, to;
    char note[300] = "";
    enum diag_status crl_revoked = DIAG_SKIP, ocsp_revoked = DIAG_SKIP;
    int fetched;

    memset(out, 0, sizeof *out);
    out->validity = out->chain = out->published = out->revoked = DIAG_SKIP;
    out->evidence = ev;
    if (!crt || !chain || !sk_X509_push(chain, crt)) {
        out->validity = DIAG_FAIL;
        set_str(ev, "note", chain ? "the certificate cannot be read" : "out of memory");
        X509_free(crt);
        sk_X509_free(chain);
        json_decref(chain_ev);
        json_decref(crl_ev);
        return;
    }
    for (int i = 0; i < sk_X509_num(intermediates); i++) {
        X509 *c = sk_X509_value(intermediates, i);
        if (X509_up_ref(c) && !sk_X509_push(chain, c))
            X509_free(c);
    }

    x509_cert_facts(crt, ev);
    from = x509_time_utc(X509_get0_notBefore(crt));
    to = x509_time_utc(X509_get0_notAfter(crt));
    /* Expiring: within the reminder window of the certificate's deployment
     * profile (EXPIRY_WARN_DAYS unless set), in calendar days as the
     * reminders count them (util/clock.h). */
    out->validity = now < from || now > to ? DIAG_FAIL
                    : clock_local_day(to) - clock_local_day(now) <= (long)profiles_reminder_days(crt) ? DIAG_WARN
                                                                                                       : DIAG_PASS;
    json_object_set_new(ev, "validity", json_string(now < from ? "not_yet_valid" : now > to ? "expired"
                                                    : out->validity == DIAG_WARN ? "expiring_soon" : "valid"));

    fetched = complete_chain(env, chain, note, sizeof note);
    if (fetched)
        json_object_set_new(chain_ev, "fetched_intermediates", json_integer(fetched));
    if (cert_env_has_anchors(env))
        out->chain = verify_chain(env, chain, note, sizeof note);
    json_object_set_new(chain_ev, "verdict", json_string(verdicts[out->chain]));
    set_str(chain_ev, "note", out->chain == DIAG_SKIP ? "no trust anchors configured" : note);
    json_object_set_new(ev, "chain", chain_ev);

    issuer = find_issuer(env, chain, crt);
    x509_cert_urls(crt, &urls);
    if (urls.n_crl) {
        judge_crl(env, crt, issuer, urls.crl[0], crl_ev, &out->published, &crl_revoked);
    } else {
        set_str(crl_ev, "note", "the certificate names no CRL distribution point");
        json_object_set_new(crl_ev, "verdict", json_string("skip"));
    }
    json_object_set_new(ev, "crl", crl_ev);
    if (urls.n_ocsp) {
        ocsp_ev = json_object();
        ocsp_revoked = judge_ocsp(env, crt, issuer, urls.ocsp[0], ocsp_ev);
        json_object_set_new(ev, "ocsp", ocsp_ev);
    }
    out->revoked = combine(crl_revoked, ocsp_revoked);
    json_object_set_new(ev, "revoked", json_string(verdicts[out->revoked]));
    sk_X509_pop_free(chain, X509_free);
}
