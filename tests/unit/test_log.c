/* Redaction helpers: secrets never reach a log line (security.md LOG-01);
 * the limiter of lines that come in floods. */
#include "check.h"

#include "util/log.h"

int main(void)
{
    char out[64];
    json_t *body = json_pack("{s:s, s:s, s:{s:s, s:s}, s:[{s:s}]}", "pin", "918273", "token", "abc",
                             "nested", "new_pin", "112233", "old_pin", "445566", "list", "puk",
                             "12345678");
    json_t *red = log_redact_json(body);
    char *text = json_dumps(red, JSON_COMPACT);

    CHECK(text && !strstr(text, "918273") && !strstr(text, "112233") && !strstr(text, "445566") &&
          !strstr(text, "12345678"));
    CHECK(text && strstr(text, "\"token\":\"abc\""));
    CHECK_STR(json_string_value(json_object_get(red, "pin")), "[redacted]");
    free(text);
    json_decref(red);
    json_decref(body);
    CHECK(log_redact_json(NULL) == NULL);

    log_sanitize("GET /x\r\nInjected: yes", out, sizeof out);
    CHECK(!strchr(out, '\r') && !strchr(out, '\n'));
    log_sanitize("0123456789012345678901234567890123456789", out, 16);
    CHECK(strlen(out) == 15 && strstr(out, "..."));
    CHECK(log_level_parse("debug") == LOG_DEBUG && log_level_parse("loud") == -1);

    /* A flood: the first line passes, the next ones within the interval are
     * held and counted, and the first after it says how many. */
    struct log_limit limit = LOG_LIMIT_INIT(60000);
    unsigned long held = 99;
    CHECK(log_limit_pass(&limit, &held) && held == 0);
    for (int i = 0; i < 3; i++)
        CHECK(!log_limit_pass(&limit, &held));
    limit.last_ms -= 60000; /* the interval is over */
    CHECK(log_limit_pass(&limit, &held) && held == 3);
    CHECK(!log_limit_pass(&limit, &held));
    return check_done();
}
