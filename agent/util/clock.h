/* The monotonic clock, for deadlines that a change of the wall clock (a
 * user or NTP setting the time) must not move. */
#ifndef UKEY_UTIL_CLOCK_H
#define UKEY_UTIL_CLOCK_H

#include <time.h>

/* Milliseconds since an arbitrary start (CLOCK_MONOTONIC). */
static inline long long clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The CLOCK_REALTIME time `ms` milliseconds from now, for the calls that
 * take a wall-clock deadline (pthread_timedjoin_np, pthread_mutex_timedlock,
 * and every timed wait on winpthreads, which has no monotonic one). */
static inline void clock_realtime_in(long ms, struct timespec *until)
{
    clock_gettime(CLOCK_REALTIME, until);
    until->tv_sec += ms / 1000;
    until->tv_nsec += (ms % 1000) * 1000000L;
    if (until->tv_nsec >= 1000000000L) {
        until->tv_sec++;
        until->tv_nsec -= 1000000000L;
    }
}

#endif
