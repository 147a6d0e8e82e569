/*
 * notify.h on Windows. Desktop notifications (a toast, or a tray balloon
 * through Shell_NotifyIconW) are not there yet: notify_open says so, and
 * the reminders scheduler logs that once per run and goes on; the
 * diagnostic page's banners still tell the user. The wake-ups work, so
 * the scheduler runs as on Linux.
 */
#include "notify/notify.h"

#include "util/thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NOTIFY_UNAVAILABLE "desktop notifications are not available on Windows yet (the diagnostic page shows the reminders)"

struct notifier {
    int unused;
};

struct notifier *notify_open(char *err, size_t errlen)
{
    snprintf(err, errlen, "%s", NOTIFY_UNAVAILABLE);
    return NULL;
}

int notify_show(struct notifier *n, const char *summary, const char *body, const char *url, char *err,
                size_t errlen)
{
    (void)n, (void)summary, (void)body, (void)url;
    snprintf(err, errlen, "%s", NOTIFY_UNAVAILABLE);
    return -1;
}

int notify_process(struct notifier *n)
{
    (void)n;
    return 0;
}

void notify_close(struct notifier *n) { (void)n; }

/* Wake-ups: posted bits under a lock, and a condition to wait on. */
struct notify_wake {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned posted;
};

struct notify_wake *notify_wake_create(void)
{
    struct notify_wake *w = calloc(1, sizeof *w);
    if (!w) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    thread_cond_init_monotonic(&w->cond);
    return w;
}

void notify_wake_post(struct notify_wake *w, unsigned what)
{
    pthread_mutex_lock(&w->lock);
    w->posted |= what;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int notify_wait(struct notify_wake *w, struct notifier *n, int timeout_ms)
{
    struct timespec until;
    int woke, rc = 0;
    (void)n;
    thread_deadline(&until, timeout_ms);
    pthread_mutex_lock(&w->lock);
    while (!w->posted && rc == 0)
        rc = thread_cond_timedwait(&w->cond, &w->lock, &until);
    woke = (int)w->posted;
    w->posted = 0;
    pthread_mutex_unlock(&w->lock);
    return woke;
}

void notify_wake_free(struct notify_wake *w)
{
    if (!w)
        return;
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
