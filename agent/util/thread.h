/*
 * Timed waits on condition variables measured on the monotonic clock, so
 * that a change of the wall clock neither ends a wait early nor stretches it.
 * POSIX (thread.c): a condition variable created with CLOCK_MONOTONIC.
 * Windows (thread_win.c): winpthreads refuses that clock (EINVAL) and would
 * read a monotonic deadline as wall-clock time, so that every wait ended at
 * once; it waits for the time left instead.
 */
#ifndef UKEY_UTIL_THREAD_H
#define UKEY_UTIL_THREAD_H

#include <pthread.h>
#include <time.h>

/* Initialises `c` for thread_cond_timedwait. Returns 0 or an error number. */
int thread_cond_init_monotonic(pthread_cond_t *c);

/* The monotonic time `ms` milliseconds from now, as a deadline. */
static inline void thread_deadline(struct timespec *t, long long ms)
{
    clock_gettime(CLOCK_MONOTONIC, t);
    t->tv_sec += (time_t)(ms / 1000);
    t->tv_nsec += (long)(ms % 1000) * 1000000;
    if (t->tv_nsec >= 1000000000) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000;
    } else if (t->tv_nsec < 0) {
        t->tv_sec--;
        t->tv_nsec += 1000000000;
    }
}

/* pthread_cond_timedwait on `c` (made by thread_cond_init_monotonic) until
 * the monotonic `deadline`: 0 when woken (perhaps spuriously), ETIMEDOUT. */
int thread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *deadline);

/* Locks `m`, waiting at most `ms`: 0, or an error number (ETIMEDOUT).
 * POSIX measures the wait on the monotonic clock (pthread_mutex_timedlock
 * takes a wall-clock deadline: a clock set back two days, or libfaketime's,
 * made every contended wait end at once); winpthreads has no such lock and
 * waits on the wall clock. */
int thread_mutex_lock_for(pthread_mutex_t *m, long long ms);

#endif
