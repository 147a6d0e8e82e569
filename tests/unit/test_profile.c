/* Deployment profiles (issue 18): the parser (valid; each invalid case names
 * file, line and key), several profiles, duplicate ids, bad URLs, a missing
 * anchors file, and matching certificates by issuer DN and key id. */
#include "check.h"

#include "profile/profile.h"
#include "util/config.h"
#include "x509/crt.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/ukey-test-profile-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    FILE *f;
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
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

/* A certificate issued by "CN=ukey test CA, O=ukey-agent tests" (the
 * fuzz corpus's certificate seed would do, but this one's issuer is known). */
static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *c = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return c;
}

int main(void)
{
    char err[1024], cmd[2048], anchors[600], profiles_dir[600];
    struct agent_config cfg;
    struct profile_help h;
    X509 *user, *other;
    json_t *list, *c;
    const char *path;

    CHECK(mkdtemp(dir) != NULL);

    /* A valid profile with every key. */
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
             "-out ca.pem -days 30 -subj '/CN=ukey test CA/O=ukey-agent tests' 2>/dev/null && "
             "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout u.key -out u.csr "
             "-subj '/CN=user' 2>/dev/null && printf 'authorityKeyIdentifier=keyid\\n' > ext.cnf && "
             "openssl x509 -req -in u.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 5 -out user.pem "
             "-extfile ext.cnf 2>/dev/null && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout o.key -out other.pem "
             "-days 30 -subj '/CN=ukey test CA/O=someone else' 2>/dev/null",
             dir);
    CHECK(system(cmd) == 0);
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
    unlink(path);

    /* Several profiles from a directory and --profile; origins merged; the strictest version. */
    snprintf(profiles_dir, sizeof profiles_dir, "%s/d", dir);
    CHECK(mkdir(profiles_dir, 0700) == 0);
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
    snprintf(cmd, sizeof cmd, "%s/user.pem", dir);
    user = read_cert(cmd);
    snprintf(cmd, sizeof cmd, "%s/other.pem", dir);
    other = read_cert(cmd);
    CHECK(user && other);
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
    X509_free(user);
    X509_free(other);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return check_done();
}
