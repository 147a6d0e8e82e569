/*
 * Logging to stderr with levels, and the redaction helpers every module uses
 * before anything that came from a request reaches a log line.
 *
 * Rule (security.md 8.9): never log request/response bodies, query strings,
 * PINs, APDU data, signatures or certificate subjects. Log the origin, route,
 * status and error class. log_redact_json() is the one place that masks
 * secret members of a JSON object when a body must be described.
 */
#ifndef UKEY_UTIL_LOG_H
#define UKEY_UTIL_LOG_H

#include "util/format.h"

#include <jansson.h>
#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug"; returns -1 for anything else. */
int log_level_parse(const char *name);

void log_msg(enum log_level level, const char *fmt, ...)
    UKEY_PRINTF(2, 3);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/*
 * A line that can come in floods (refused connections, a full connection
 * table): at most one per `interval_ms`. log_limit_pass() returns 1 when a
 * line may be written now, with *held set to how many were held back since
 * the last one (the line should say so), else 0 and counts this one.
 * Thread-safe.
 */
struct log_limit {
    long long interval_ms;
    long long last_ms;
    int started;
    unsigned long held;
};
#define LOG_LIMIT_INIT(ms) {(ms), 0, 0, 0}
int log_limit_pass(struct log_limit *limit, unsigned long *held);

/* True for member names whose values are secrets (pin, puk, new_pin, ...). */
int log_is_secret_key(const char *key);

/*
 * Returns a new deep copy of `value` in which the value of every secret member
 * (at any depth) is replaced by the string "[redacted]". The caller owns the
 * result (json_decref). NULL on allocation failure or NULL input.
 */
json_t *log_redact_json(const json_t *value);

/*
 * Copies `in` to `out` (size `outlen`, always NUL-terminated) keeping only
 * printable ASCII; every other byte becomes '?', so a header value from the
 * network cannot forge log lines (CR/LF injection). Long values are cut and
 * marked with "...".
 */
void log_sanitize(const char *in, char *out, size_t outlen);

#endif
