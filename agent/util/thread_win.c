/* Monotonic timed condition waits on winpthreads; see thread.h. */
#include "util/thread.h"

#include "util/clock.h"

#include <errno.h>

int thread_cond_init_monotonic(pthread_cond_t *c) { return pthread_cond_init(c, NULL); }

int thread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *deadline)
{
    struct timespec now, left;
    clock_gettime(CLOCK_MONOTONIC, &now);
    left.tv_sec = deadline->tv_sec - now.tv_sec;
    left.tv_nsec = deadline->tv_nsec - now.tv_nsec;
    if (left.tv_nsec < 0) {
        left.tv_sec--;
        left.tv_nsec += 1000000000;
    }
    if (left.tv_sec < 0 || (left.tv_sec == 0 && left.tv_nsec == 0))
        return ETIMEDOUT;
    /* A relative wait: the wall clock plays no part. */
    return pthread_cond_timedwait_relative_np(c, m, &left);
}

int thread_mutex_lock_for(pthread_mutex_t *m, long long ms)
{
    struct timespec deadline;
    clock_realtime_in((long)ms, &deadline);
    return pthread_mutex_timedlock(m, &deadline);
}
