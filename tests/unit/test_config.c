/* agent.json: defaults, valid files, and errors that name file, line and key. */
#include "check.h"
#include "tmp.h"

#include "util/config.h"
#include "util/file.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>

static char dir[1024], path[1100];

static int load_text(const char *text, struct agent_config *cfg, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    config_free(cfg);
    config_defaults(cfg);
    err[0] = '\0';
    return config_load(cfg, path, err, errlen);
}

int main(void)
{
    struct agent_config cfg;
    char err[512];
    CHECK(tmp_dir(dir, sizeof dir, "ukey-test-config") == 0);
    snprintf(path, sizeof path, "%s/agent.json", dir);

    config_defaults(&cfg);
    CHECK(cfg.port == 27443 && cfg.max_body_bytes == 65536 && cfg.n_allow_origins == 0);

    CHECK(cfg.reminders == 1);
    CHECK(load_text("{\"reminders\": false}", &cfg, err, sizeof err) == 0 && cfg.reminders == 0);
    CHECK(load_text("{\n\"reminders\": \"yes\"}", &cfg, err, sizeof err) == -1);
    CHECK(strstr(err, ":2: key \"reminders\"") && strstr(err, "true or false"));

    CHECK(load_text("{\n  \"port\": 28000,\n  \"allow_origins\": [\"https://portal.gov.example\", "
                    "\"https://*.example.gov.cn\"],\n  \"log_level\": \"debug\",\n"
                    "  \"limits\": {\"max_body_bytes\": 4096, \"handshake_timeout_s\": 3}\n}\n",
                    &cfg, err, sizeof err) == 0);
    CHECK(cfg.port == 28000 && cfg.n_allow_origins == 2 && cfg.log_level == LOG_DEBUG);
    CHECK(cfg.max_body_bytes == 4096 && cfg.handshake_timeout_s == 3);
    CHECK_STR(cfg.allow_origins[1], "https://*.example.gov.cn");

    /* Unknown key: file, line and key named. */
    CHECK(load_text("{\n  \"port\": 1,\n  \"colour\": \"red\"\n}\n", &cfg, err, sizeof err) == -1);
    CHECK(strstr(err, path) && strstr(err, ":3:") && strstr(err, "\"colour\"") && strstr(err, "unknown key"));
    /* Wrong type and range. */
    CHECK(load_text("{\"port\": \"27443\"}", &cfg, err, sizeof err) == -1 && strstr(err, "\"port\""));
    CHECK(load_text("{\"port\": 70000}", &cfg, err, sizeof err) == -1 && strstr(err, "1 to 65535"));
    CHECK(load_text("{\"limits\": {\"max_body_bytes\": 1}}", &cfg, err, sizeof err) == -1);
    CHECK(load_text("{\"limits\": {\"speed\": 1}}", &cfg, err, sizeof err) == -1 && strstr(err, "\"speed\""));
    /* An http:// origin accepted knowingly (issue 17, W12): only on http:// entries, a boolean. */
    CHECK(load_text("{\"allow_origins\": [{\"origin\": \"http://127.0.0.1:8088\", \"insecure_http\": true}, "
                    "\"http://127.0.0.1:8090\"]}", &cfg, err, sizeof err) == 0);
    CHECK(cfg.origin_insecure_http[cfg.n_allow_origins - 2] == 1 && cfg.origin_insecure_http[cfg.n_allow_origins - 1] == 0);
    CHECK(load_text("{\"allow_origins\": [{\"origin\": \"https://a.gov.example\", \"insecure_http\": true}]}", &cfg,
                    err, sizeof err) == -1 && strstr(err, "only for an http:// origin"));
    CHECK(load_text("{\"allow_origins\": [{\"origin\": \"http://127.0.0.1:8088\", \"insecure_http\": 1}]}", &cfg,
                    err, sizeof err) == -1 && strstr(err, "insecure_http"));
    /* Data signing per site (issue 15): a boolean, off unless set, matched like the allow-list. */
    CHECK(load_text("{\"allow_origins\": [{\"origin\": \"https://old.gov.example\", \"legacy_sign\": true}, "
                    "\"https://new.gov.example\"]}", &cfg, err, sizeof err) == 0);
    CHECK(config_legacy_sign_for(&cfg, "https://old.gov.example") == 1);
    CHECK(config_legacy_sign_for(&cfg, "https://new.gov.example") == 0);
    CHECK(config_legacy_sign_for(&cfg, NULL) == 0);
    CHECK(load_text("{\"allow_origins\": [{\"origin\": \"https://old.gov.example\", \"legacy_sign\": \"yes\"}]}",
                    &cfg, err, sizeof err) == -1 && strstr(err, "\"legacy_sign\" is true or false"));
    /* Per-origin consent quota (issue 17): 2 unless configured, 1 to 16. */
    CHECK(cfg.consents_per_origin == 2);
    CHECK(load_text("{\"limits\": {\"consents_per_origin\": 1}}", &cfg, err, sizeof err) == 0 &&
          cfg.consents_per_origin == 1);
    CHECK(load_text("{\"limits\": {\"consents_per_origin\": 0}}", &cfg, err, sizeof err) == -1 &&
          strstr(err, "1 to 16"));
    /* A bad origin names the origin. */
    CHECK(load_text("{\n\"allow_origins\": [\"https://portal.gov.example/\"]}", &cfg, err, sizeof err) == -1);
    CHECK(strstr(err, ":2:") && strstr(err, "https://portal.gov.example/"));
    /* Syntax errors carry line and column; duplicates are refused. */
    CHECK(load_text("{\n\"port\": 1,,\n}", &cfg, err, sizeof err) == -1 && strstr(err, ":2:") &&
          strstr(err, "invalid JSON"));
    CHECK(load_text("{\"port\": 1, \"port\": 2}", &cfg, err, sizeof err) == -1);
    CHECK(load_text("[1,2]", &cfg, err, sizeof err) == -1 && strstr(err, "one JSON object"));
    CHECK(load_text("", &cfg, err, sizeof err) == -1);
    /* A missing explicit file is an error that names it. */
    file_remove(path);
    config_free(&cfg);
    config_defaults(&cfg);
    CHECK(config_load(&cfg, path, err, sizeof err) == -1 && strstr(err, path));
    /* A missing default file is fine. */
    tmp_setenv("XDG_CONFIG_HOME", "/nonexistent-ukey-test");
    tmp_setenv("APPDATA", "/nonexistent-ukey-test"); /* Windows */
    CHECK(config_load(&cfg, NULL, err, sizeof err) == 0);
    config_free(&cfg);
    CHECK(tmp_remove_tree(dir) == 0);
    return check_done();
}
