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

#endif
