/* Renewal reminders without a bus: the scheduler's wake-ups, which links
 * may be opened, local days, and reminders.json read back (missing,
 * damaged, stale and future entries) and written (0600, atomically).
 * Linux, and Windows under Wine. */
#include "check.h"
#include "tmp.h"

#include "notify/notify.h"
#include "notify/reminders.h"
#include "util/clock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

/* The file's mode: 0600 on Linux; Windows has no mode bits (the file is
 * private by its directory's ACL). */
#ifdef _WIN32
#define PRIVATE_MODE(st) 1
#else
#define PRIVATE_MODE(st) (((st).st_mode & 0777) == 0600)
#endif

static char dir[512];
static char path[600];

static void write_text(const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

#define KEY_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define KEY_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define KEY_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

/* Loads `text` as of day `today` and returns how many entries were kept. */
static size_t kept(const char *text, long today)
{
    json_t *shown;
    size_t n;
    write_text(text);
    shown = reminders_load(path, today);
    n = shown ? json_object_size(shown) : (size_t)-1;
    json_decref(shown);
    return n;
}

static void *post_later(void *w)
{
    struct timespec pause = {0, 50 * 1000000L};
    nanosleep(&pause, NULL);
    notify_wake_post(w, NOTIFY_WAKE_STOP);
    return NULL;
}

/* The scheduler's wake-ups: posted bits come back once, a post from
 * another thread ends a wait, and a wait with nothing posted times out. */
static void test_wake(void)
{
    struct notify_wake *w = notify_wake_create();
    pthread_t t;
    CHECK(w != NULL);
    if (!w)
        return;
    notify_wake_post(w, NOTIFY_WAKE_TOKEN);
    notify_wake_post(w, NOTIFY_WAKE_TOKEN);
    CHECK(notify_wait(w, NULL, 0) == NOTIFY_WAKE_TOKEN);
    CHECK(notify_wait(w, NULL, 20) == 0);
    CHECK(pthread_create(&t, NULL, post_later, w) == 0);
    CHECK(notify_wait(w, NULL, 10000) == NOTIFY_WAKE_STOP);
    pthread_join(t, NULL);
    notify_wake_free(w);
}

int main(void)
{
    char text[11], buf[sizeof dir + 64];
    long today;
    json_t *shown;
    struct stat st;

    test_wake();

    /* Links: https anywhere, http only on loopback, nothing that hides another host. */
    CHECK(notify_url_allowed("https://ca.example.gov.cn/renew?a=1&b=2"));
    CHECK(notify_url_allowed("http://127.0.0.1:8088/renew"));
    CHECK(notify_url_allowed("http://[::1]/renew"));
    CHECK(notify_url_allowed("http://localhost:80"));
    CHECK(!notify_url_allowed("http://ca.example.gov.cn/renew"));
    CHECK(!notify_url_allowed("http://127.0.0.1:80@evil.example/"));
    CHECK(!notify_url_allowed("http://127.0.0.1.evil.example/"));
    CHECK(!notify_url_allowed("http://localhost.evil.example/"));
    CHECK(!notify_url_allowed("http://127.0.0.1:/x"));
    CHECK(!notify_url_allowed("http://127.0.0.1:123456/"));
    CHECK(!notify_url_allowed("https://"));
    CHECK(!notify_url_allowed("https:///path"));
    CHECK(!notify_url_allowed("https://a.example/ x"));
    CHECK(!notify_url_allowed("https://a.example/\nx"));
    CHECK(!notify_url_allowed("-https://a.example/"));
    CHECK(!notify_url_allowed("javascript:alert(1)"));
    CHECK(!notify_url_allowed("file:///etc/passwd"));
    CHECK(!notify_url_allowed(""));

    /* Local days. */
    /* POSIX TZ strings: glibc and msvcrt read them alike. */
    tmp_setenv("TZ", "UTC0");
    tzset();
    CHECK(reminders_day(0, text) == 0);
    CHECK(strcmp(text, "1970-01-01") == 0);
    CHECK(reminders_day(951782400, text) == 11016); /* 2000-02-29, a leap day */
    CHECK(strcmp(text, "2000-02-29") == 0);
    tmp_setenv("TZ", "CST-8"); /* UTC+8: 20:00 UTC is the next day there */
    tzset();
    CHECK(reminders_day(951782400 + 20 * 3600, text) == 11017);
    CHECK(strcmp(text, "2000-03-01") == 0);
    /* The one count of days left (util/clock.h): from 00:30 to 23:30 nine
     * days later is 9 calendar days there, though 9 days and 23 hours. */
    CHECK(clock_local_day(951782400 + 15 * 3600) == 11016);
    CHECK(clock_local_day(951782400 + 16 * 3600 + 30 * 60 + 9 * 86400 + 23 * 3600) -
              clock_local_day(951782400 + 16 * 3600 + 30 * 60) == 9);

    if (tmp_dir(dir, sizeof dir, "ukey-test-reminders") != 0)
        return 1;
    snprintf(path, sizeof path, "%s/reminders.json", dir);
    today = reminders_day(1765000000, text); /* 2025-12-06 */
    CHECK(strcmp(text, "2025-12-06") == 0);

    /* Missing, damaged or of another shape: afresh (an empty record). */
    shown = reminders_load(path, today);
    CHECK(shown && json_object_size(shown) == 0);
    json_decref(shown);
    CHECK(kept("{not json", today) == 0);
    CHECK(kept("", today) == 0);
    CHECK(kept("[]", today) == 0);
    CHECK(kept("{\"version\": 2, \"shown\": {\"" KEY_A "\": \"2025-12-06\"}}", today) == 0);
    CHECK(kept("{\"version\": 1, \"shown\": []}", today) == 0);
    CHECK(kept("{\"version\": 1, \"shown\": {\"abc\": \"2025-12-06\"}}", today) == 0);
    CHECK(kept("{\"version\": 1, \"shown\": {\"" KEY_A "\": \"yesterday\"}}", today) == 0);
    CHECK(kept("{\"version\": 1, \"shown\": {\"" KEY_A "\": \"2025-13-06\"}}", today) == 0);
    CHECK(kept("{\"version\": 1, \"shown\": {\"" KEY_A "\": 20251206}}", today) == 0);
    CHECK(kept("{\"version\": 1, \"shown\": {\"" KEY_A "\": \"2025-12-06\", \"" KEY_A "\": \"2025-12-05\"}}",
               today) == 0);
    /* Good entries: today and 60 days ago stay; 61 days ago and the future go. */
    CHECK(kept("{\"version\": 1, \"shown\": {\"" KEY_A "\": \"2025-12-06\", \"" KEY_B "\": \"2025-10-07\"}}",
               today) == 2);
    CHECK(kept("{\"version\": 1, \"shown\": {\"" KEY_A "\": \"2025-10-06\", \"" KEY_B "\": \"2025-12-07\", \"" KEY_C
               "\": \"2025-12-05\"}}",
               today) == 1);

    /* Written 0600, read back the same. */
    write_text("stale");
    shown = json_pack("{s:s}", KEY_C, "2025-12-06");
    CHECK(reminders_save(path, shown) == 0);
    json_decref(shown);
    CHECK(stat(path, &st) == 0 && PRIVATE_MODE(st));
    shown = reminders_load(path, today);
    CHECK(shown && json_object_size(shown) == 1 &&
          strcmp(json_string_value(json_object_get(shown, KEY_C)), "2025-12-06") == 0);
    json_decref(shown);
    /* A directory that cannot be written: -1, the old file kept. */
    snprintf(buf, sizeof buf, "%s/missing/reminders.json", dir);
    shown = json_object();
    CHECK(reminders_save(buf, shown) == -1);
    json_decref(shown);

    tmp_remove_tree(dir);
    return check_done();
}
