/* Turns, listers and watchers of vendor libraries; see vendorlib.h. */
#include "token/vendorlib.h"

#include "util/clock.h"
#include "util/join.h"
#include "util/log.h"
#include "util/thread.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define VLIB_POLL_MIN_S 1
#define VLIB_POLL_MAX_S 8

static void *lister_main(void *arg);

void vlib_init(struct vlib *v, const char *tag, const char *name, size_t (*list)(void *ctx, struct reader_info *out,
                                                                                 size_t cap), void *ctx)
{
    memset(v, 0, sizeof *v);
    v->tag = tag;
    v->name = name;
    v->list = list;
    v->ctx = ctx;
    pthread_mutex_init(&v->lock, NULL);
    thread_cond_init_monotonic(&v->cond);
}

int vlib_start(struct vlib *v)
{
    v->live = 1;
    if (pthread_create(&v->lister, NULL, lister_main, v) != 0) {
        v->live = 0;
        return -1;
    }
    v->has_lister = 1;
    return 0;
}

/* With v->lock held: the turn's holder is waiting for the user to type the
 * PIN on the token, which is slow but not stuck. */
static int entering(const struct vlib *v) { return v->entry_until_ms && clock_ms() < v->entry_until_ms; }

/* With v->lock held: the library is stuck (once: say so). */
static void mark_stuck(struct vlib *v)
{
    if (!v->stuck)
        log_warn("%s: %s: a call has not returned for %d s: the library is left aside", v->tag, v->name,
                 VLIB_WAIT_S);
    v->stuck = 1;
}

/*
 * A library whose call never returns is marked stuck: then nobody waits
 * for it again, its tokens are left out and it is reported, while the
 * other libraries and PC/SC go on. OpenSC 0.23 does this when the card is
 * pulled in C_GetTokenInfo: gdb shows the caller holding the card's mutex
 * and waiting for it again in sc_unlock, with the module's global lock
 * held, so every later call waits too, until the process ends.
 */
int vlib_take(struct vlib *v)
{
    struct timespec until;
    int rc = 0;
    thread_deadline(&until, VLIB_WAIT_S * 1000LL);
    pthread_mutex_lock(&v->lock);
    while (v->busy && !v->stuck && !entering(v) && rc == 0)
        rc = thread_cond_timedwait(&v->cond, &v->lock, &until);
    if (v->busy) {
        if (!entering(v))
            mark_stuck(v);
        pthread_mutex_unlock(&v->lock);
        return -1;
    }
    v->stuck = 0;
    v->busy = v->live;
    pthread_mutex_unlock(&v->lock);
    return v->busy ? 0 : -1;
}

void vlib_give(struct vlib *v)
{
    pthread_mutex_lock(&v->lock);
    v->busy = 0;
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->lock);
}

int vlib_is_stuck(struct vlib *v)
{
    int stuck;
    pthread_mutex_lock(&v->lock);
    stuck = v->stuck;
    pthread_mutex_unlock(&v->lock);
    return stuck;
}

void vlib_entry(struct vlib *v, long long until_ms)
{
    pthread_mutex_lock(&v->lock);
    v->entry_until_ms = until_ms;
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->lock);
}

static void *lister_main(void *arg)
{
    struct vlib *v = arg;
    struct reader_info found[VLIB_MAX_SLOTS];
    pthread_mutex_lock(&v->lock);
    for (;;) {
        unsigned long job;
        size_t n;
        while (!v->quit && v->answered == v->asked)
            pthread_cond_wait(&v->cond, &v->lock);
        if (v->quit)
            break;
        job = v->asked;
        pthread_mutex_unlock(&v->lock);
        n = v->list(v->ctx, found, VLIB_MAX_SLOTS);
        pthread_mutex_lock(&v->lock);
        memcpy(v->listed, found, n * sizeof found[0]);
        v->n_listed = n;
        v->answered = job;
        if (v->abandoned) {
            /* Its asker gave up: the library answers again, and the turn
             * the asker left taken is given back here. */
            v->abandoned = 0;
            v->busy = 0;
            v->stuck = 0;
        }
        pthread_cond_broadcast(&v->cond);
    }
    pthread_mutex_unlock(&v->lock);
    return NULL;
}

long vlib_listed(struct vlib *v, struct reader_info *out, size_t cap)
{
    struct timespec until;
    unsigned long job;
    int rc = 0;
    long n;
    if (vlib_take(v) != 0) {
        pthread_mutex_lock(&v->lock);
        n = entering(v) ? (long)(v->n_listed < cap ? v->n_listed : cap) : -1;
        for (long i = 0; i < n; i++) {
            out[i] = v->listed[i];
            out[i].state = READER_IN_USE;
        }
        pthread_mutex_unlock(&v->lock);
        return n;
    }
    thread_deadline(&until, VLIB_WAIT_S * 1000LL);
    pthread_mutex_lock(&v->lock);
    job = ++v->asked;
    pthread_cond_broadcast(&v->cond);
    while (v->answered != job && rc == 0)
        rc = thread_cond_timedwait(&v->cond, &v->lock, &until);
    if (v->answered != job) {
        v->abandoned = 1; /* the turn stays taken until the lister is back */
        mark_stuck(v);
        pthread_mutex_unlock(&v->lock);
        return -1;
    }
    n = (long)(v->n_listed < cap ? v->n_listed : cap);
    memcpy(out, v->listed, (size_t)n * sizeof out[0]);
    pthread_mutex_unlock(&v->lock);
    vlib_give(v);
    return n;
}

void vlib_retire(struct vlib *v, void (*fin)(void *ctx))
{
    if (vlib_take(v) != 0)
        return;
    if (fin)
        fin(v->ctx);
    pthread_mutex_lock(&v->lock);
    v->live = 0;
    pthread_mutex_unlock(&v->lock);
    vlib_give(v);
}

json_t *vlib_json(struct vlib *v, const char *path, const char *why)
{
    int stuck = !why && vlib_is_stuck(v);
    json_t *o = json_pack("{s:s, s:b}", "path", path, "loaded", why == NULL);
    if (o && (why || stuck))
        json_object_set_new(o, "error", json_pack("{s:s, s:s, s:s, s:s}", "code", err_code(UKEY_ERR_MODULE_FAILED),
                                                  "zh-CN", err_message_zh(UKEY_ERR_MODULE_FAILED), "en",
                                                  err_message_en(UKEY_ERR_MODULE_FAILED), "detail",
                                                  why ? why : "stopped answering: a call has not returned"));
    if (o && stuck)
        json_object_set_new(o, "stuck", json_true());
    return o;
}

int vlib_join(pthread_t t, int seconds)
{
    if (join_within(t, seconds * 1000L) == 0)
        return 0;
    pthread_detach(t); /* inside a stuck call: left to the process's end */
    return -1;
}

void vlib_stop(struct vlib *v)
{
    if (!v->has_lister)
        return;
    pthread_mutex_lock(&v->lock);
    v->quit = 1;
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->lock);
    vlib_join(v->lister, 1);
    v->has_lister = 0;
}

/* Watchers ------------------------------------------------------------------ */

void vlib_watch_init(struct vlib_watch *w, void (*cb)(enum pcsc_event ev, const char *reader, void *arg), void *arg)
{
    w->cb = cb;
    w->arg = arg;
    w->stopping = 0;
    pthread_mutex_init(&w->lock, NULL);
    thread_cond_init_monotonic(&w->cond);
}

int vlib_watch_stopping(struct vlib_watch *w)
{
    int stop;
    pthread_mutex_lock(&w->lock);
    stop = w->stopping;
    pthread_mutex_unlock(&w->lock);
    return stop;
}

void vlib_watch_stop(struct vlib_watch *w)
{
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int vlib_watcher_start(struct vlib *v, void *(*fn)(void *), void *arg)
{
    if (pthread_create(&v->watcher, NULL, fn, arg) != 0)
        return -1;
    v->watching = 1;
    return 0;
}

void vlib_watcher_join(struct vlib *v)
{
    if (!v->watching)
        return;
    if (vlib_join(v->watcher, 2) != 0)
        log_warn("%s: %s: the watcher did not stop", v->tag, v->name);
    v->watching = 0;
}

size_t vlib_compare(struct vlib *v, struct vlib_watch *w, struct vlib_seen *seen, int report)
{
    struct reader_info now[VLIB_MAX_SLOTS];
    long got = vlib_listed(v, now, VLIB_MAX_SLOTS);
    size_t n, changed = 0;

    if (got < 0)
        return 0; /* busy or stuck: look again next time, nothing is news yet */
    n = (size_t)got;
    for (size_t i = 0; i < seen->n; i++) {
        int still = 0;
        for (size_t j = 0; j < n && !still; j++)
            still = strcmp(seen->names[i], now[j].name) == 0;
        if (!still && ++changed && report)
            w->cb(PCSC_CARD_REMOVED, seen->names[i], w->arg);
    }
    for (size_t j = 0; j < n; j++) {
        int known = 0;
        for (size_t i = 0; i < seen->n && !known; i++)
            known = strcmp(seen->names[i], now[j].name) == 0;
        if (!known && ++changed && report)
            w->cb(PCSC_CARD_INSERTED, now[j].name, w->arg);
    }
    for (size_t j = 0; j < n; j++)
        memcpy(seen->names[j], now[j].name, sizeof seen->names[j]);
    seen->n = n;
    return changed;
}

void vlib_poll(struct vlib *v, struct vlib_watch *w, struct vlib_seen *seen)
{
    unsigned wait_s = VLIB_POLL_MIN_S;
    for (;;) {
        struct timespec until;
        int stop;
        thread_deadline(&until, wait_s * 1000LL);
        pthread_mutex_lock(&w->lock);
        while (!w->stopping && thread_cond_timedwait(&w->cond, &w->lock, &until) != ETIMEDOUT)
            ;
        stop = w->stopping;
        pthread_mutex_unlock(&w->lock);
        if (stop)
            return;
        /* Back off while nothing changes; look often again after a change. */
        if (vlib_compare(v, w, seen, 1) > 0)
            wait_s = VLIB_POLL_MIN_S;
        else if (wait_s < VLIB_POLL_MAX_S)
            wait_s *= 2;
    }
}
