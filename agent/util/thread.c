/* Monotonic timed condition waits on POSIX; see thread.h. */
#include "util/thread.h"

int thread_cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc != 0)
        return rc;
    if ((rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
        rc = pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

int thread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *deadline)
{
    return pthread_cond_timedwait(c, m, deadline);
}

int thread_mutex_lock_for(pthread_mutex_t *m, long long ms)
{
    struct timespec deadline;
    thread_deadline(&deadline, ms);
    return pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &deadline);
}
