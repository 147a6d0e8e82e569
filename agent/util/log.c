/* Levelled stderr logger and redaction helpers; see log.h. */
#include "util/log.h"

#include "util/clock.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level current_level = LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level) { current_level = level; }

enum log_level log_get_level(void) { return current_level; }

static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;

int log_limit_pass(struct log_limit *limit, unsigned long *held)
{
    long long now = clock_ms();
    int pass;
    pthread_mutex_lock(&limit_lock);
    pass = !limit->started || now - limit->last_ms >= limit->interval_ms;
    if (pass) {
        *held = limit->held;
        limit->held = 0;
        limit->last_ms = now;
        limit->started = 1;
    } else {
        limit->held++;
    }
    pthread_mutex_unlock(&limit_lock);
    return pass;
}

int log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
        if (name && strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level > current_level)
        return;
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);

    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per line keeps lines whole between threads. */
    fprintf(stderr, "%s.%03ldZ ukey-agent %s: %s\n", stamp, ts.tv_nsec / 1000000L,
            level_names[level], line);
}

int log_is_secret_key(const char *key)
{
    static const char *const secret_keys[] = {"pin", "puk", "old_pin", "new_pin", "password"};
    for (size_t i = 0; i < sizeof secret_keys / sizeof secret_keys[0]; i++)
        if (strcmp(key, secret_keys[i]) == 0)
            return 1;
    return 0;
}

json_t *log_redact_json(const json_t *value)
{
    if (!value)
        return NULL;
    if (json_is_object(value)) {
        json_t *copy = json_object();
        const char *key;
        json_t *member;
        if (!copy)
            return NULL;
        json_object_foreach((json_t *)value, key, member) {
            json_t *v = log_is_secret_key(key) ? json_string("[redacted]") : log_redact_json(member);
            if (json_object_set_new(copy, key, v) != 0) {
                json_decref(copy);
                return NULL;
            }
        }
        return copy;
    }
    if (json_is_array(value)) {
        json_t *copy = json_array();
        size_t i;
        json_t *member;
        if (!copy)
            return NULL;
        json_array_foreach(value, i, member) {
            if (json_array_append_new(copy, log_redact_json(member)) != 0) {
                json_decref(copy);
                return NULL;
            }
        }
        return copy;
    }
    return json_deep_copy(value);
}

void log_sanitize(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return;
    for (; in && *in && o + 1 < outlen; in++)
        out[o++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
    if (in && *in && outlen > 4)
        memcpy(out + outlen - 4, "...", 3), o = outlen - 1;
    out[o] = '\0';
}
