/* Deployment profiles (issue 18): the parser (valid; each invalid case names
 * file, line and key), several profiles, duplicate ids, bad URLs, a missing
 * anchors file, and matching certificates by issuer DN and key id. Runs on
 * Windows too. */
#include "check.h"
#include "tmp.h"

#include "profile/profile.h"
#include "util/config.h"
#include "util/file.h"
#include "x509/crt.h"

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[1024];

static const char *write_file(const char *name, const char *text)
{
    static char path[4][1200];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    file_write_atomic(p, text, strlen(text), 0644);
    return p;
}

/* profile_check_file on `text`; -1 expected, and `err` must hold ":LINE:" and the key. */
static char last[1024]; /* the last error fails() saw */

static int fails(const char *text, int line, const char *key)
{
    char *err = last, want[64];
    const char *path = write_file("bad.json", text);
    snprintf(want, sizeof want, ":%d: key \"%s\"", line, key);
    if (profile_check_file(path, err, sizeof last) != -1) {
        fprintf(stderr, "accepted: %s\n", text);
        return 0;
    }
    if (!strstr(err, path) || !strstr(err, want)) {
        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, want);
        return 0;
    }
    return 1;
}

#define GOOD_HEAD "{\"id\": \"ca-1\", \"name\": {\"zh-CN\": \"甲\", \"en\": \"A\"},\n"
#define ISSUERS "\"issuers\": [{\"subject\": \"CN=ukey test CA, O=ukey-agent tests\"}]"

/* A certificate of `key` for "CN=cn, O=o" (no O when NULL) valid for
 * `days`, issued by `issuer` with `issuer_key` (self-signed, a CA, when
 * NULL), with key identifiers, written to dir/name as PEM. */
static X509 *make_cert(const char *name, const char *cn, const char *o, EVP_PKEY *key, X509 *issuer,
                       EVP_PKEY *issuer_key, int days)
{
    static long serial = 1;
    X509 *c = X509_new();
    X509_NAME *n = X509_NAME_new();
    X509V3_CTX ctx;
    X509_EXTENSION *e;
    BIO *b = BIO_new(BIO_s_mem());
    const char *exts[][2] = {{"subjectKeyIdentifier", "hash"}, {"authorityKeyIdentifier", "keyid"},
                             {"basicConstraints", issuer ? "CA:FALSE" : "critical,CA:TRUE"}};
    char *pem;
    long len;
    int ok = c && n && b && X509_set_version(c, 2) && ASN1_INTEGER_set(X509_get_serialNumber(c), serial++) &&
             X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) &&
             (!o || X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)o, -1, -1, 0)) &&
             X509_set_subject_name(c, n) && X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n) &&
             X509_gmtime_adj(X509_getm_notBefore(c), 0) && X509_gmtime_adj(X509_getm_notAfter(c), days * 86400L) &&
             X509_set_pubkey(c, key);
    X509V3_set_ctx(&ctx, issuer ? issuer : c, c, NULL, NULL, 0);
    for (size_t i = 0; ok && i < sizeof exts / sizeof exts[0]; i++) {
        ok = (e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1])) != NULL && X509_add_ext(c, e, -1);
        X509_EXTENSION_free(e);
    }
    ok = ok && X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()) && PEM_write_bio_X509(b, c) &&
         (len = BIO_get_mem_data(b, &pem)) > 0;
    if (ok) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        ok = file_write_atomic(path, pem, (size_t)len, 0644) == 0;
    }
    BIO_free(b);
    X509_NAME_free(n);
    if (!ok) {
        X509_free(c);
        return NULL;
    }
    return c;
}

int main(void)
{
    char err[1024], anchors[1100], profiles_dir[1100];
    struct agent_config cfg;
    struct profile_help h;
    X509 *ca, *user, *other;
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *user_key = EVP_EC_gen("P-256"), *other_key = EVP_EC_gen("P-256");
    json_t *list, *c;
    const char *path;

    CHECK(tmp_dir(dir, sizeof dir, "ukey-test-profile") == 0);

    /* A CA, a user's certificate it issued (5 days), another CA of the
     * same CN. */
    ca = make_cert("ca.pem", "ukey test CA", "ukey-agent tests", ca_key, NULL, NULL, 30);
    user = make_cert("user.pem", "user", NULL, user_key, ca, ca_key, 5);
    other = make_cert("other.pem", "ukey test CA", "someone else", other_key, NULL, NULL, 30);
    CHECK(ca && user && other);

    /* A valid profile with every key. */
    snprintf(anchors, sizeof anchors, "%s/ca.pem", dir);
    path = write_file("good.json", GOOD_HEAD
                      "\"hotline\": \"+86 (21) 962600\", \"service_points_url\": \"https://ca.example.gov.cn/points\",\n"
                      "\"links\": {\"renew\": \"https://ca.example.gov.cn/renew\", \"unlock\": \"http://127.0.0.1:8088/u\","
                      " \"change_details\": \"http://localhost/c\", \"download\": \"http://[::1]:1/d\"},\n"
                      "\"trust_anchors\": [\"ca.pem\"], \"allow_origins\": [\"https://portal.example.gov.cn\","
                      " {\"origin\": \"https://old.example.gov.cn\", \"legacy_sign\": true}],\n"
                      "\"min_agent_version\": \"0.0.9\", \"reminder_days\": 7,\n" ISSUERS "}\n");
    CHECK(profile_check_file(path, err, sizeof err) == 0);

    /* Each invalid case names file, line and key. */
    CHECK(fails(GOOD_HEAD "\"colour\": 1,\n" ISSUERS "}", 2, "colour"));
    CHECK(fails("{\n\"id\": \"Bad_Id\", \"name\": {\"zh-CN\": \"甲\", \"en\": \"A\"}, " ISSUERS "}", 2, "id"));
    CHECK(fails("{\"name\": {\"zh-CN\": \"甲\", \"en\": \"A\"}, " ISSUERS "}", 0, "id"));
    CHECK(fails("{\"id\": \"a\",\n\"name\": {\"zh-CN\": \"甲\"}, " ISSUERS "}", 2, "name"));
    CHECK(fails("{\"id\": \"a\",\n\"name\": {\"zh-CN\": \"甲\", \"en\": \"A\", \"fr\": \"B\"}, " ISSUERS "}", 2, "fr"));
    CHECK(fails(GOOD_HEAD "\n\"hotline\": \"call us\", " ISSUERS "}", 3, "hotline"));
    CHECK(fails(GOOD_HEAD "\"links\": {\n\"renew\": \"http://ca.example.gov.cn/renew\"}, " ISSUERS "}", 3, "renew"));
    CHECK(fails(GOOD_HEAD "\"links\": {\"unlock\": \"ftp://x\"}, " ISSUERS "}", 2, "unlock"));
    CHECK(fails(GOOD_HEAD "\"links\": {\"unlock\": \"http://127.0.0.1.evil.example/\"}, " ISSUERS "}", 2, "unlock"));
    CHECK(fails(GOOD_HEAD "\"links\": {\"unlock\": \"https://a b\"}, " ISSUERS "}", 2, "unlock"));
    CHECK(fails(GOOD_HEAD "\"links\": {\"help\": \"https://a\"}, " ISSUERS "}", 2, "help"));
    CHECK(fails(GOOD_HEAD "\"service_points_url\": 5, " ISSUERS "}", 2, "service_points_url"));
    CHECK(fails(GOOD_HEAD "\n\n\"trust_anchors\": [\"missing.pem\"], " ISSUERS "}", 4, "trust_anchors"));
    CHECK(strstr(last, "no such file") != NULL);
    CHECK(fails(GOOD_HEAD "\"trust_anchors\": [\"good.json\"], " ISSUERS "}", 2, "trust_anchors"));
    CHECK(fails(GOOD_HEAD "\"allow_origins\": [\"https://portal.example.gov.cn/\"], " ISSUERS "}", 2, "allow_origins"));
    CHECK(fails(GOOD_HEAD "\"min_agent_version\": \"latest\", " ISSUERS "}", 2, "min_agent_version"));
    CHECK(fails(GOOD_HEAD "\"reminder_days\": 0, " ISSUERS "}", 2, "reminder_days"));
    CHECK(fails(GOOD_HEAD "\"reminder_days\": 366, " ISSUERS "}", 2, "reminder_days"));
    CHECK(fails(GOOD_HEAD "\"issuers\": []}", 2, "issuers"));
    CHECK(fails(GOOD_HEAD "\"issuers\": [{\"subject\": \"not a name\"}]}", 2, "subject"));
    CHECK(fails(GOOD_HEAD "\"issuers\": [{\"key_id\": \"xyz\"}]}", 2, "key_id"));
    CHECK(fails(GOOD_HEAD "\"issuers\": [{\"subject\": \"CN=a\", \"key_id\": \"00\"}]}", 2, "issuers"));
    CHECK(fails(GOOD_HEAD "\"hotline\": \"962600\"}", 0, "issuers"));
    /* Not JSON, or not an object: file and line. */
    path = write_file("bad.json", "{\n\"id\": ,}");
    CHECK(profile_check_file(path, err, sizeof err) == -1 && strstr(err, ":2:") && strstr(err, "invalid JSON"));
    path = write_file("bad.json", "[]");
    CHECK(profile_check_file(path, err, sizeof err) == -1 && strstr(err, "one JSON object"));
    CHECK(profile_check_file("/nonexistent/p.json", err, sizeof err) == -1 && strstr(err, "cannot read"));
    file_remove(path);

    /* Several profiles from a directory and --profile; origins merged; the strictest version. */
    snprintf(profiles_dir, sizeof profiles_dir, "%s/d", dir);
    CHECK(file_mkdirs(profiles_dir) == 0);
    write_file("d/a.json", GOOD_HEAD "\"trust_anchors\": [\"../ca.pem\"], \"min_agent_version\": \"0.0.9\",\n"
               "\"links\": {\"unlock\": \"https://ca.example.gov.cn/unlock\"}, \"hotline\": \"962600\",\n"
               "\"allow_origins\": [\"https://portal.example.gov.cn\"], \"reminder_days\": 7, " ISSUERS "}");
    write_file("d/readme.txt", "not a profile");
    path = write_file("b.json", "{\"id\": \"ca-2\", \"name\": {\"zh-CN\": \"乙\", \"en\": \"B\"}, \"min_agent_version\": "
                                "\"0.0.10\", \"issuers\": [{\"key_id\": \"01:02:03\"}]}");
    config_defaults(&cfg);
    CHECK(config_add_profile_dir(&cfg, profiles_dir, err, sizeof err) == 0);
    cfg.profile_dirs_set = 1;
    CHECK(config_add_profile(&cfg, path, err, sizeof err) == 0);
    CHECK(profiles_load(&cfg, err, sizeof err) == 0);
    CHECK(cfg.n_allow_origins == 1);
    CHECK_STR(cfg.allow_origins[0], "https://portal.example.gov.cn");
    CHECK_STR(profiles_min_version(), "0.0.10");
    list = profiles_json(1);
    CHECK(json_array_size(json_object_get(list, "profiles")) == 2);
    c = json_array_get(json_object_get(list, "profiles"), 0);
    CHECK_STR(json_string_value(json_object_get(c, "id")), "ca-1");
    CHECK(json_integer_value(json_object_get(c, "reminder_days")) == 7);
    CHECK(json_integer_value(json_object_get(json_array_get(json_object_get(list, "profiles"), 1), "reminder_days")) ==
          30);
    json_decref(list);

    /* Matching: issuer DN as a name (not text), the anchors, the help. */
    CHECK(profiles_for_cert(user) && strcmp(profile_id(profiles_for_cert(user)), "ca-1") == 0);
    CHECK(profiles_for_cert(other) == NULL); /* same CN, another O */
    CHECK(profiles_reminder_days(user) == 7 && profiles_reminder_days(other) == 30);
    CHECK(profiles_help(user, HELP_UNLOCK, &h) == 0);
    CHECK_STR(h.url, "https://ca.example.gov.cn/unlock");
    CHECK_STR(h.phone, "962600");
    CHECK_STR(h.name_en, "A");
    CHECK(profiles_help(user, HELP_RENEW, &h) == 0 && h.url == NULL); /* no renew link, no service page */
    CHECK(profiles_help(other, HELP_UNLOCK, &h) == -1);
    {
        STACK_OF(X509) *sk = sk_X509_new_null();
        unsigned char *der = NULL;
        int len = x509_der(user, &der);
        profiles_add_anchors(sk);
        CHECK(sk_X509_num(sk) == 1);
        sk_X509_pop_free(sk, X509_free);
        c = json_object();
        profiles_annotate_cert(c, der, (size_t)len, time(NULL));
        CHECK_STR(json_string_value(json_object_get(c, "profile")), "ca-1");
        CHECK(json_integer_value(json_object_get(json_object_get(c, "reminder"), "days_left")) == 5);
        CHECK(json_object_get(json_object_get(c, "reminder"), "renew_url") == NULL);
        json_decref(c);
        c = json_object();
        profiles_annotate_cert(c, der, (size_t)len, time(NULL) - 86400 * 10); /* 15 days left: outside 7 */
        CHECK(json_object_get(c, "profile") && !json_object_get(c, "reminder"));
        json_decref(c);
        OPENSSL_free(der);
    }
    /* By authority key identifier: a profile naming the CA's key id. */
    {
        const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(user);
        char hex[200] = "", text[600];
        CHECK(akid != NULL);
        for (int i = 0; i < ASN1_STRING_length(akid); i++)
            snprintf(hex + 2 * i, 3, "%02x", ASN1_STRING_get0_data(akid)[i]);
        snprintf(text, sizeof text, "{\"id\": \"by-key\", \"name\": {\"zh-CN\": \"丙\", \"en\": \"C\"}, "
                                    "\"issuers\": [{\"key_id\": \"%s\"}]}", hex);
        path = write_file("k.json", text);
        config_free(&cfg);
        config_defaults(&cfg);
        cfg.profile_dirs_set = 1;
        CHECK(config_add_profile(&cfg, path, err, sizeof err) == 0);
        CHECK(profiles_load(&cfg, err, sizeof err) == 0);
        CHECK(profiles_for_cert(user) && strcmp(profile_id(profiles_for_cert(user)), "by-key") == 0);
        CHECK(profiles_for_cert(other) == NULL);
        CHECK(profiles_min_version() == NULL);
    }

    /* Duplicate ids: an error naming both files, and nothing stays loaded. */
    config_free(&cfg);
    config_defaults(&cfg);
    CHECK(config_add_profile_dir(&cfg, profiles_dir, err, sizeof err) == 0);
    cfg.profile_dirs_set = 1;
    path = write_file("good.json", GOOD_HEAD ISSUERS "}");
    CHECK(config_add_profile(&cfg, path, err, sizeof err) == 0);
    CHECK(profiles_load(&cfg, err, sizeof err) == -1);
    CHECK(strstr(err, "good.json") && strstr(err, "d/a.json") && strstr(err, "\"ca-1\""));
    CHECK(profiles_for_cert(user) == NULL);

    /* agent.json's keys. */
    path = write_file("agent.json", "{\"profiles\": [\"/x/a.json\"],\n \"profile_dirs\": []}");
    config_free(&cfg);
    config_defaults(&cfg);
    CHECK(config_load(&cfg, path, err, sizeof err) == 0 && cfg.n_profiles == 1 && cfg.profile_dirs_set &&
          cfg.n_profile_dirs == 0);
    path = write_file("agent.json", "{\n\"profile_dirs\": \"/x\"}");
    CHECK(config_load(&cfg, path, err, sizeof err) == -1 && strstr(err, ":2: key \"profile_dirs\""));

    config_free(&cfg);
    profiles_free();
    X509_free(ca);
    X509_free(user);
    X509_free(other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(user_key);
    EVP_PKEY_free(other_key);
    CHECK(tmp_remove_tree(dir) == 0);
    return check_done();
}
