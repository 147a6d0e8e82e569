/* The renewal-reminder scheduler and reminders.json; see reminders.h. */
#include "notify/reminders.h"

#include "api/events.h"
#include "notify/notify.h"
#include "profile/profile.h"
#include "token/tokens.h"
#include "util/b64.h"
#include "util/clock.h"
#include "util/file.h"
#include "util/hex.h"
#include "util/log.h"
#include "x509/crt.h"
#include "x509/name.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REMINDERS_MAX_FILE (256 * 1024)
#define REMINDERS_URL_MAX 1024
#define REMINDERS_MAX_DER 16384

static struct {
    pthread_t thread;
    int running;
    atomic_int stopping;
    struct notify_wake *wake;   /* NOTIFY_WAKE_TOKEN: a token was inserted; _STOP: look at `stopping` */
    char *path;                 /* <state_dir>/reminders.json */
} rem;

long reminders_day(time_t t, char text[11])
{
    struct tm tm;
    localtime_r(&t, &tm);
    if (text)
        snprintf(text, 11, "%04u-%02u-%02u", (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
                 (unsigned)tm.tm_mday % 100u);
    return clock_local_day(t);
}

/* "YYYY-MM-DD" as a day number; -1 when it is not a date. */
static long parse_day(const char *s)
{
    unsigned y, m, d;
    int end = 0;
    if (strlen(s) != 10 || sscanf(s, "%4u-%2u-%2u%n", &y, &m, &d, &end) != 3 || end != 10 || m < 1 || m > 12 ||
        d < 1 || d > 31)
        return -1;
    return (long)(clock_timegm(&(struct tm){.tm_year = (int)y - 1900, .tm_mon = (int)m - 1, .tm_mday = (int)d}) / 86400);
}

json_t *reminders_load(const char *path, long today)
{
    json_error_t jerr;
    json_t *root, *shown, *kept = json_object(), *v;
    const char *key, *why = NULL;
    char *text;
    size_t len;

    if (!kept)
        return NULL;
    if (!(text = file_read_all(path, REMINDERS_MAX_FILE, &len))) {
        if (errno != ENOENT)
            log_warn("reminders: cannot read %s (%s); starting afresh", path, strerror(errno));
        return kept;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    shown = json_object_get(root, "shown");
    if (!root)
        why = jerr.text;
    else if (!json_is_object(root) || json_integer_value(json_object_get(root, "version")) != 1 ||
             !json_is_object(shown))
        why = "not {\"version\": 1, \"shown\": {...}}";
    json_object_foreach(why ? NULL : shown, key, v) {
        long day = json_is_string(v) ? parse_day(json_string_value(v)) : -1;
        if (strlen(key) != 64 || strspn(key, "0123456789abcdef") != 64 || day < 0) {
            why = "an entry is not \"<sha256 hex>\": \"YYYY-MM-DD\"";
            break;
        }
        if (day <= today && today - day <= REMINDERS_KEEP_DAYS)
            json_object_set(kept, key, v);
    }
    if (why) {
        log_warn("reminders: %s is damaged (%s); starting afresh", path, why);
        json_object_clear(kept);
    }
    json_decref(root);
    return kept;
}

int reminders_save(const char *path, json_t *shown)
{
    json_t *root = json_pack("{s:i, s:O}", "version", 1, "shown", shown);
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    int rc = text ? file_write_atomic(path, text, strlen(text), 0600) : -1;
    if (rc != 0)
        log_warn("reminders: cannot write %s: %s", path, text ? strerror(errno) : "out of memory");
    free(text);
    json_decref(root);
    return rc;
}

/* The texts of one reminder: summary and body, zh-CN line then en line;
 * `days`: left until `expiry`, or since it when `expired`. */
static void compose(X509 *x, int expired, long days, const char *expiry, char *summary, size_t scap, char *body,
                    size_t bcap)
{
    char subject[512], cn[256] = "", issuer[512], issuer_cn[256] = "", zh[1024], en[1024];
    const char *holder = cn;
    x509_name_format(X509_get_subject_name(x), subject, sizeof subject, cn, sizeof cn);
    x509_name_format(X509_get_issuer_name(x), issuer, sizeof issuer, issuer_cn, sizeof issuer_cn);
    if (!cn[0])
        holder = subject;
    snprintf(summary, scap, "%s", expired ? "证书已过期 / Certificate expired" : "证书即将到期 / Certificate expires soon");
    if (expired && days == 0) {
        snprintf(zh, sizeof zh, "%s 的证书已于今天（%s）过期，请尽快续期。", holder, expiry);
        snprintf(en, sizeof en, "The certificate of %s expired today (%s); please renew it.", holder, expiry);
    } else if (expired) {
        snprintf(zh, sizeof zh, "%s 的证书已于 %s 过期（%ld 天前），请尽快续期。", holder, expiry, days);
        snprintf(en, sizeof en, "The certificate of %s expired on %s (%ld day%s ago); please renew it.", holder,
                 expiry, days, days == 1 ? "" : "s");
    } else if (days == 0) {
        snprintf(zh, sizeof zh, "%s 的证书今天（%s）到期，请及时续期。", holder, expiry);
        snprintf(en, sizeof en, "The certificate of %s expires today (%s); please renew it.", holder, expiry);
    } else {
        snprintf(zh, sizeof zh, "%s 的证书还有 %ld 天到期（%s），请及时续期。", holder, days, expiry);
        snprintf(en, sizeof en, "The certificate of %s expires in %ld day%s (%s); please renew it.", holder, days,
                 days == 1 ? "" : "s", expiry);
    }
    if (snprintf(body, bcap, "%s\n%s\n颁发者 / Issuer: %s", zh, en, issuer_cn[0] ? issuer_cn : issuer) >= (int)bcap)
        log_debug("reminders: the notification's text was cut at %zu bytes", bcap - 1);
}

struct check {
    struct notifier **n;
    int *warned;
    json_t *shown;
    time_t now;
    long today;
    char today_text[11];
    int changed;
};

/* Connects when not connected; logs the first failure of a run only. */
static int connect_bus(struct check *c)
{
    char err[256];
    if (*c->n)
        return 0;
    if ((*c->n = notify_open(err, sizeof err)))
        return 0;
    if (!*c->warned)
        log_warn("reminders: %s; no desktop notifications (the agent runs on)", err);
    *c->warned = 1;
    return -1;
}

/* One certificate (DER): a notification when it is due and not yet shown today. */
static void check_cert(struct check *c, const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    unsigned char md[32];
    unsigned md_len = 0, window;
    struct profile_help help;
    char key[65], url[REMINDERS_URL_MAX] = "", expiry[11], summary[128], body[4096], err[256];
    time_t not_after;
    long days;
    int expired;
    json_t *seen;

    if (!x || !X509_digest(x, EVP_sha256(), md, &md_len) || md_len != sizeof md)
        goto out;
    hex_encode(key, md, sizeof md, 0);
    /* The window and the renewal page of the certificate's deployment profile. */
    window = profiles_reminder_days(x);
    if (profiles_help(x, HELP_RENEW, &help) == 0 && help.url)
        snprintf(url, sizeof url, "%s", help.url);
    if (!(not_after = x509_time_utc(X509_get0_notAfter(x))))
        goto out;
    /* Calendar days in the user's time zone: "expires in 10 days" names the
     * day it stops working, as a person counts. */
    days = reminders_day(not_after, expiry) - c->today;
    expired = not_after <= c->now;
    if (expired)
        days = -days;
    else if (days > (long)window)
        goto out;
    /* Due: read the record now (a day without a due certificate never does). */
    if (!c->shown && !(c->shown = reminders_load(rem.path, c->today)))
        goto out;
    seen = json_object_get(c->shown, key);
    if (seen && strcmp(json_string_value(seen), c->today_text) == 0)
        goto out;
    if (url[0] && !notify_url_allowed(url)) {
        log_warn("reminders: ignoring a renewal link that is not https:// or loopback http://");
        url[0] = '\0';
    }
    compose(x, expired, days, expiry, summary, sizeof summary, body, sizeof body);
    if (connect_bus(c) != 0)
        goto out;
    if (notify_show(*c->n, summary, body, url[0] ? url : NULL, err, sizeof err) != 0) {
        if (!*c->warned)
            log_warn("reminders: %s; no desktop notifications (the agent runs on)", err);
        *c->warned = 1;
        notify_close(*c->n); /* connect again next time: the session may come back */
        *c->n = NULL;
        goto out;
    }
    *c->warned = 0;
    json_object_set_new(c->shown, key, json_string(c->today_text));
    c->changed = 1;
    log_info("reminders: notified that certificate %.16s %s %ld day(s)", key,
             expired ? "expired" : "expires in", days);
out:
    X509_free(x);
}

/* Looks at every certificate of every token present. */
static void check_all(struct notifier **n, int *warned)
{
    struct check c = {.n = n, .warned = warned, .now = time(NULL)};
    json_t *list = NULL, *tok, *cert;
    unsigned char *der = malloc(REMINDERS_MAX_DER);
    size_t i, j, seen = 0;

    c.today = reminders_day(c.now, c.today_text);
    if (!der)
        goto out;
    tokens_list(&list);
    json_array_foreach(json_object_get(list, "tokens"), i, tok) {
        json_array_foreach(json_object_get(tok, "certificates"), j, cert) {
            const char *b64 = json_string_value(json_object_get(cert, "der"));
            size_t len;
            if (b64 && b64_decode_strict(b64, strlen(b64), der, REMINDERS_MAX_DER, &len) == 0)
                check_cert(&c, der, len), seen++;
        }
    }
    log_debug("reminders: checked %zu certificate(s)", seen);
    /* Written when something was shown (stale entries go then too). */
    if (c.changed)
        reminders_save(rem.path, c.shown);
out:
    json_decref(list);
    json_decref(c.shown);
    free(der);
}

/* Milliseconds until just after the next local midnight, for the daily
 * check, at most an hour: notify_wait may wait on the monotonic clock,
 * which stands still while the machine sleeps, and the wall clock or time zone may
 * change meanwhile. A wake-up on the same day does nothing. */
static int ms_to_next_day(void)
{
    time_t now = time(NULL), next;
    struct tm tm;
    localtime_r(&now, &tm);
    tm.tm_mday += 1;
    tm.tm_hour = 0, tm.tm_min = 0, tm.tm_sec = 5;
    tm.tm_isdst = -1;
    next = mktime(&tm);
    if (next <= now || next - now > 3600)
        next = now + 3600;
    return (int)(next - now) * 1000;
}

static void *reminders_main(void *unused)
{
    struct notifier *n = NULL;
    int warned = 0;
    long checked_day;
    (void)unused;

    check_all(&n, &warned);
    checked_day = reminders_day(time(NULL), NULL);
    for (;;) {
        int woke = notify_wait(rem.wake, n, ms_to_next_day());
        if (woke < 0) {
            log_error("reminders: waiting: %s; no more reminders until the agent restarts", strerror(errno));
            break;
        }
        if (atomic_load(&rem.stopping))
            break;
        if (n && notify_process(n) != 0) {
            notify_close(n);
            n = NULL;
        }
        if ((woke & NOTIFY_WAKE_TOKEN) || reminders_day(time(NULL), NULL) != checked_day) {
            check_all(&n, &warned);
            checked_day = reminders_day(time(NULL), NULL);
        }
    }
    notify_close(n);
    return NULL;
}

/* On the monitor thread: wake the scheduler. */
static void on_event(const char *type, const char *data_json, void *ctx)
{
    (void)data_json;
    (void)ctx;
    if (strcmp(type, "token-inserted") == 0)
        notify_wake_post(rem.wake, NOTIFY_WAKE_TOKEN);
}

int reminders_start(const struct reminders_options *opt)
{
    size_t n = strlen(opt->state_dir) + sizeof "/" REMINDERS_FILE;
    if (!(rem.path = malloc(n)) || !(rem.wake = notify_wake_create())) {
        log_error("reminders: cannot start: %s", strerror(errno));
        goto fail;
    }
    snprintf(rem.path, n, "%s/%s", opt->state_dir, REMINDERS_FILE);
    atomic_store(&rem.stopping, 0);
    if (pthread_create(&rem.thread, NULL, reminders_main, NULL) != 0) {
        log_error("reminders: cannot start their thread");
        goto fail;
    }
    rem.running = 1;
    events_observe(on_event, NULL);
    return 0;
fail:
    reminders_stop();
    return -1;
}

void reminders_stop(void)
{
    events_observe(NULL, NULL);
    if (rem.running) {
        atomic_store(&rem.stopping, 1);
        notify_wake_post(rem.wake, NOTIFY_WAKE_STOP);
        pthread_join(rem.thread, NULL);
        rem.running = 0;
    }
    notify_wake_free(rem.wake);
    rem.wake = NULL;
    free(rem.path);
    rem.path = NULL;
}
