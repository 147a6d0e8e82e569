/* join.h over pthread_timedjoin_np (glibc). */
#include "util/join.h"

#include "util/clock.h"

int join_within(pthread_t t, long ms)
{
    struct timespec until;
    clock_realtime_in(ms, &until);
    return pthread_timedjoin_np(t, NULL, &until);
}
