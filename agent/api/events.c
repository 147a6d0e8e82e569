/* The event hub and its PC/SC feed; see events.h. */
#include "api/events.h"

#include "token/pcsc.h"
#include "token/pkcs11.h"
#include "token/skf.h"
#include "token/tokens.h"
#include "util/log.h"
#include "util/thread.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_MAX_SUBS 256
#define EVENTS_QUEUE 8192 /* bytes per subscriber; a client that falls behind loses its stream */

struct event_sub {
    char queue[EVENTS_QUEUE];
    size_t len;
    int parked, overflow;
    void (*park)(void *ctx);
    void (*wake)(void *ctx);
    void *ctx;
};

static pthread_mutex_t hub_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hub_cond; /* the keep-alive thread's: a first subscriber, or closing */
static struct event_sub *subs[EVENTS_MAX_SUBS];
static size_t n_subs;
static int closing;
static unsigned long next_id = 1;
static pthread_t keepalive;
/* The observer; its lock is held while it runs, so that events_observe(NULL)
 * waits for a call in progress. */
static pthread_mutex_t observer_lock = PTHREAD_MUTEX_INITIALIZER;
static void (*observer)(const char *type, const char *data_json, void *ctx);
static void *observer_ctx;
static int keepalive_running; /* guarded by hub_lock */

static void ping(void);
static void *keepalive_main(void *unused);

struct event_sub *events_subscribe(void (*park)(void *ctx), void (*wake)(void *ctx), void *ctx)
{
    struct event_sub *sub = calloc(1, sizeof *sub);
    if (!sub) {
        errno = ENOMEM;
        return NULL;
    }
    sub->park = park;
    sub->wake = wake;
    sub->ctx = ctx;
    /* The first bytes tell EventSource how long to wait before reconnecting. */
    sub->len = (size_t)snprintf(sub->queue, sizeof sub->queue, "retry: 2000\n\n");
    pthread_mutex_lock(&hub_lock);
    /* The keep-alive thread starts with the first stream: an agent that
     * nobody listens to has a thread less. Without it: busy, retry. */
    if (!keepalive_running && !closing)
        keepalive_running = pthread_create(&keepalive, NULL, keepalive_main, NULL) == 0;
    for (size_t i = 0; i < EVENTS_MAX_SUBS && keepalive_running; i++) {
        if (!subs[i] && !closing) {
            subs[i] = sub;
            if (n_subs++ == 0)
                pthread_cond_broadcast(&hub_cond);
            pthread_mutex_unlock(&hub_lock);
            return sub;
        }
    }
    pthread_mutex_unlock(&hub_lock);
    free(sub);
    /* Full: closed streams hold their slot until they are written to, so
     * ping everyone now to free those, and let this client retry. */
    ping();
    errno = EBUSY;
    return NULL;
}

ssize_t events_read(struct event_sub *sub, char *buf, size_t max)
{
    ssize_t n;
    pthread_mutex_lock(&hub_lock);
    if (sub->len == 0 && (closing || sub->overflow)) {
        pthread_mutex_unlock(&hub_lock);
        return -1;
    }
    if (sub->len == 0) {
        sub->parked = 1;
        sub->park(sub->ctx);
        pthread_mutex_unlock(&hub_lock);
        return 0;
    }
    n = (ssize_t)(sub->len < max ? sub->len : max);
    memcpy(buf, sub->queue, (size_t)n);
    memmove(sub->queue, sub->queue + n, sub->len - (size_t)n);
    sub->len -= (size_t)n;
    pthread_mutex_unlock(&hub_lock);
    return n;
}

void events_unsubscribe(struct event_sub *sub)
{
    pthread_mutex_lock(&hub_lock);
    for (size_t i = 0; i < EVENTS_MAX_SUBS; i++)
        if (subs[i] == sub)
            subs[i] = NULL, n_subs--;
    pthread_mutex_unlock(&hub_lock);
    free(sub);
}

/* Appends text to every subscriber and wakes the parked ones. */
static void broadcast(const char *text)
{
    size_t n = strlen(text);
    pthread_mutex_lock(&hub_lock);
    for (size_t i = 0; i < EVENTS_MAX_SUBS; i++) {
        struct event_sub *sub = subs[i];
        if (!sub)
            continue;
        if (sub->len + n > sizeof sub->queue)
            sub->overflow = 1;
        else
            memcpy(sub->queue + sub->len, text, n), sub->len += n;
        if (sub->parked) {
            sub->parked = 0;
            sub->wake(sub->ctx);
        }
    }
    pthread_mutex_unlock(&hub_lock);
}

void events_publish(const char *type, const char *data_json)
{
    char text[1024];
    unsigned long id;
    pthread_mutex_lock(&hub_lock);
    id = next_id++;
    pthread_mutex_unlock(&hub_lock);
    snprintf(text, sizeof text, "id: %lu\nevent: %s\ndata: %s\n\n", id, type, data_json);
    broadcast(text);
    pthread_mutex_lock(&observer_lock);
    if (observer)
        observer(type, data_json, observer_ctx);
    pthread_mutex_unlock(&observer_lock);
}

void events_observe(void (*fn)(const char *type, const char *data_json, void *ctx), void *ctx)
{
    pthread_mutex_lock(&observer_lock);
    observer = fn;
    observer_ctx = ctx;
    pthread_mutex_unlock(&observer_lock);
}

static void ping(void) { broadcast(": ping\n\n"); }

/* Pings every EVENTS_PING_S while anyone listens; sleeps untimed otherwise. */
static void *keepalive_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&hub_lock);
    while (!closing) {
        struct timespec until;
        if (n_subs == 0) {
            pthread_cond_wait(&hub_cond, &hub_lock);
            continue;
        }
        thread_deadline(&until, EVENTS_PING_S * 1000LL);
        if (thread_cond_timedwait(&hub_cond, &hub_lock, &until) == ETIMEDOUT && !closing) {
            pthread_mutex_unlock(&hub_lock);
            ping();
            pthread_mutex_lock(&hub_lock);
        }
    }
    pthread_mutex_unlock(&hub_lock);
    return NULL;
}

static void publish_reader(const char *type, const char *reader, const char *token)
{
    json_t *data = json_pack("{s:s, s:s?}", "reader", reader, "token", token);
    char *text = data ? json_dumps(data, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    if (text)
        events_publish(type, text);
    log_debug("event %s", type);
    free(text);
    json_decref(data);
}

/* A card that a PC/SC driver reads and a PKCS#11 module shows too comes
 * and goes once: its PC/SC reader tells it, the module's view is quiet. */
static void publish_token(const char *type, const char *reader, const char *token, int shadowed)
{
    if (shadowed)
        log_debug("event %s in \"%s\": told by the card's PC/SC reader", type, reader);
    else
        publish_reader(type, reader, token);
}

/* Runs in the PC/SC monitor thread and the PKCS#11 slot watchers. */
static void on_pcsc(enum pcsc_event ev, const char *reader, void *arg)
{
    char id[TOKEN_ID_LEN];
    int known, shadowed;
    (void)arg;
    switch (ev) {
    case PCSC_READER_ADDED:
        publish_reader("reader-added", reader, NULL);
        break;
    case PCSC_READER_REMOVED:
        publish_reader("reader-removed", reader, NULL);
        break;
    case PCSC_CARD_INSERTED:
        /* Reading the card here also warms the cache for the next listing. */
        known = tokens_in_reader(reader, id, &shadowed) == UKEY_OK;
        publish_token("token-inserted", reader, known ? id : NULL, shadowed);
        break;
    case PCSC_CARD_REMOVED:
        known = tokens_forget_reader(reader, id, &shadowed);
        publish_token("token-removed", reader, known ? id : NULL, shadowed);
        break;
    }
}

int events_start(void)
{
    thread_cond_init_monotonic(&hub_cond);
    return pcsc_monitor_start(on_pcsc, NULL) == 0 && p11_monitor_start(on_pcsc, NULL) == 0 &&
                   skf_monitor_start(on_pcsc, NULL) == 0
               ? 0
               : -1;
}

void events_shutdown(void)
{
    pcsc_monitor_stop();
    p11_monitor_stop();
    skf_monitor_stop();
    pthread_mutex_lock(&hub_lock);
    closing = 1;
    pthread_cond_broadcast(&hub_cond);
    for (size_t i = 0; i < EVENTS_MAX_SUBS; i++) {
        if (subs[i] && subs[i]->parked) {
            subs[i]->parked = 0;
            subs[i]->wake(subs[i]->ctx);
        }
    }
    pthread_mutex_unlock(&hub_lock);
    /* No thread starts once `closing` is set. */
    if (keepalive_running)
        pthread_join(keepalive, NULL);
    keepalive_running = 0;
}
