/*
 * What the two backends that load a vendor's library share: the PKCS#11
 * modules (pkcs11.c) and the SKF libraries (skf.c, GM/T 0016). Both call
 * code we do not control, which may take turns badly with other threads or
 * never return; this file holds the one answer to that:
 *
 * - the turn: every call into a library but its blocking event wait is
 *   made with the library's turn taken, one call at a time; whoever waits
 *   for the turn waits at most VLIB_WAIT_S, then the library is marked
 *   stuck and nobody waits for it again until a call of it returns;
 * - the lister: listings run on the library's own thread, so a library
 *   stuck inside a call holds up that thread only, never a request, doctor
 *   or the agent's exit;
 * - the watcher's comparison of listings (tokens that came and went) and
 *   its polling with back-off, for libraries without a usable event wait.
 */
#ifndef UKEY_TOKEN_VENDORLIB_H
#define UKEY_TOKEN_VENDORLIB_H

#include "token/pcsc.h"

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>

#define VLIB_WAIT_S 5
#define VLIB_MAX_SLOTS 16

struct vlib {
    const char *tag;            /* "pkcs11", "skf": the log lines' prefix */
    const char *name;           /* the library's file name */
    /* The lister's work: asks the library for its tokens as readers.
     * Called on the lister thread with the turn taken. */
    size_t (*list)(void *ctx, struct reader_info *out, size_t cap);
    void *ctx;
    /* The turn is a flag, not a mutex, so that the lister can give back a
     * turn its caller gave up on. */
    pthread_mutex_t lock;       /* guards the members below */
    pthread_cond_t cond;
    int busy;
    int stuck;                  /* a call did not return within VLIB_WAIT_S */
    long long entry_until_ms;   /* the turn's holder waits for the user's PIN
                                 * entry on the token until then (clock_ms) */
    int live;                   /* initialised and not yet finalised */
    pthread_t lister;
    int has_lister, quit;
    unsigned long asked, answered;
    int abandoned;              /* the asker stopped waiting: the lister gives the turn back */
    struct reader_info listed[VLIB_MAX_SLOTS];
    size_t n_listed;
    pthread_t watcher;          /* the library's insert/remove watcher */
    int watching;
};

/* Sets up `v` (not yet live). `name` and `ctx` are borrowed for its life. */
void vlib_init(struct vlib *v, const char *tag, const char *name, size_t (*list)(void *ctx, struct reader_info *out,
                                                                                 size_t cap), void *ctx);

/* Makes `v` live and starts its lister. 0, or -1 (no thread: not live). */
int vlib_start(struct vlib *v);

/* Takes the turn, waiting at most VLIB_WAIT_S: 0, or -1 when the library
 * is busy, stuck (marked so now if it was not) or finalised. Nobody waits
 * while the holder waits for the user's PIN entry: busy, not stuck. */
int vlib_take(struct vlib *v);
void vlib_give(struct vlib *v);

/* Whether a call has not returned within VLIB_WAIT_S, under the lock. */
int vlib_is_stuck(struct vlib *v);

/* Marks the start (until > 0, clock_ms) and the end (0) of the user's PIN
 * entry on the token, while the turn is held. */
void vlib_entry(struct vlib *v, long long until_ms);

/* The library's tokens, listed by its lister within VLIB_WAIT_S; -1 when
 * it is busy, stuck or finalised. While a PIN is typed on one of its
 * tokens, its last listing with every slot in use. */
long vlib_listed(struct vlib *v, struct reader_info *out, size_t cap);

/* Takes the turn, runs fin(ctx) (C_Finalize and the like; NULL: nothing
 * to run) and marks the library finalised. A stuck library keeps its turn for good: it is left
 * as it is rather than hang the agent's exit. */
void vlib_retire(struct vlib *v, void (*fin)(void *ctx));

/* Stops and joins the lister (1 s at most; one inside a stuck call is
 * left to the process's end). */
void vlib_stop(struct vlib *v);

/* A library's entry in a listing: {"path", "loaded"} and, when it did not
 * load (`why`, English) or is stuck, "error": {code MODULE_FAILED, zh-CN,
 * en, detail}. */
json_t *vlib_json(struct vlib *v, const char *path, const char *why);

/* Joins `t` within `seconds`; 0, or -1 after detaching it. */
int vlib_join(pthread_t t, int seconds);

/* The watchers of one backend: their callback and their stop. */
struct vlib_watch {
    void (*cb)(enum pcsc_event ev, const char *reader, void *arg);
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping;
};

/* What one watcher saw last. */
struct vlib_seen {
    char names[VLIB_MAX_SLOTS][128];
    size_t n;
};

void vlib_watch_init(struct vlib_watch *w, void (*cb)(enum pcsc_event ev, const char *reader, void *arg), void *arg);
int vlib_watch_stopping(struct vlib_watch *w);
/* Tells every watcher of `w` to stop (they return from vlib_poll). */
void vlib_watch_stop(struct vlib_watch *w);

/* The library's tokens now, told against `seen`: those that came and went
 * are reported through w->cb when `report` is set; `seen` becomes the new
 * list. A busy or stuck library reports nothing. Returns how many changed. */
size_t vlib_compare(struct vlib *v, struct vlib_watch *w, struct vlib_seen *seen, int report);

/* Starts fn(arg) as the library's watcher thread. 0 or -1. */
int vlib_watcher_start(struct vlib *v, void *(*fn)(void *), void *arg);

/* Joins the watcher (told to stop, and its wait ended) within 2 s; one
 * that does not stop is left behind, logged. No-op if none runs. */
void vlib_watcher_join(struct vlib *v);

/* Lists the library every 1 to 8 s (the wait doubles while nothing
 * changes) and reports changes, until w is stopped. */
void vlib_poll(struct vlib *v, struct vlib_watch *w, struct vlib_seen *seen);

#endif
