/* join.h on winpthreads, which has no timed join: it is asked whether the
 * thread has ended (_pthread_tryjoin) every few milliseconds. */
#include "util/join.h"

#include "util/clock.h"

#include <errno.h>
#include <windows.h>

#define JOIN_POLL_MS 10

int join_within(pthread_t t, long ms)
{
    long long until = clock_ms() + ms;
    for (;;) {
        int rc = _pthread_tryjoin(t, NULL);
        if (rc != EBUSY)
            return rc;
        if (clock_ms() >= until)
            return ETIMEDOUT;
        Sleep(JOIN_POLL_MS);
    }
}
