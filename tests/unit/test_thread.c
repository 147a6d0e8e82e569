/*
 * util/thread.h's timed lock (its condition waits: test_net.c). ctest runs
 * this twice on Linux: as is, and as unit.test_thread_clock_back with
 * libfaketime setting the wall clock two days back, where a wall-clock
 * deadline (pthread_mutex_timedlock's) ended every contended wait at once
 * (a card request beside the hotplug monitor's read heard TOKEN_BUSY).
 * Not the condition waits there: libfaketime 0.9.10 takes their deadline
 * for a wall-clock one even on a monotonic condition variable. Windows
 * (under Wine) runs the first.
 */
#include "util/thread.h"

#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t held, done;

static void sleep_ms(long ms) { nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL); }

/* Holds m for a moment, then lets go. */
static void *hold_briefly(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    pthread_barrier_wait(&held);
    sleep_ms(200);
    pthread_mutex_unlock(&m);
    return NULL;
}

/* Holds m until the main thread has given up on it. */
static void *hold_until_done(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    pthread_barrier_wait(&held);
    pthread_barrier_wait(&done);
    pthread_mutex_unlock(&m);
    return NULL;
}

static void test_lock_for(void)
{
    pthread_t t;
    int rc;
    /* Free: taken at once. */
    CHECK(thread_mutex_lock_for(&m, 1000) == 0);
    pthread_mutex_unlock(&m);
    /* Held for 200 ms: a wait of 5 s gets it (with a wall-clock deadline
     * two days back it gave up at once). */
    CHECK(pthread_create(&t, NULL, hold_briefly, NULL) == 0);
    pthread_barrier_wait(&held);
    rc = thread_mutex_lock_for(&m, 5000);
    CHECK(rc == 0);
    if (rc == 0)
        pthread_mutex_unlock(&m);
    pthread_join(t, NULL);
    /* Held throughout: the wait ends, and says so. */
    CHECK(pthread_create(&t, NULL, hold_until_done, NULL) == 0);
    pthread_barrier_wait(&held);
    CHECK(thread_mutex_lock_for(&m, 100) == ETIMEDOUT);
    pthread_barrier_wait(&done);
    pthread_join(t, NULL);
}

#ifndef _WIN32
/* Under libfaketime (FAKETIME set, NO_FAKE_STAT=1): the wall clock the
 * program reads is days behind the kernel's (a new file's time), so that
 * this run tests what it says. */
static void test_clock_is_back(void)
{
    struct stat st;
    FILE *f = tmpfile();
    CHECK(f && fstat(fileno(f), &st) == 0 && st.st_mtime - time(NULL) > 86400);
    if (f)
        fclose(f);
}
#endif

int main(void)
{
    pthread_barrier_init(&held, NULL, 2);
    pthread_barrier_init(&done, NULL, 2);
#ifndef _WIN32
    if (getenv("FAKETIME"))
        test_clock_is_back();
#endif
    test_lock_for();
    pthread_barrier_destroy(&held);
    pthread_barrier_destroy(&done);
    return check_done();
}
