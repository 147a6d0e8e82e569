/* Clocks and calendar arithmetic: the monotonic clock, for deadlines that a
 * change of the wall clock (a user or NTP setting the time) must not move;
 * timegm() the same on every platform; and the user's calendar day. */
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
 * a wait on a condition made with the default clock); util/thread.h has the
 * monotonic waits. */
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

/*
 * timegm(): the seconds since 1970 of broken-down UTC time `tm` (tm_year,
 * tm_mon, tm_mday, tm_hour, tm_min, tm_sec; out-of-range values carry over),
 * for any year. Windows has no timegm, and its _mkgmtime64 stops at the
 * year 3000, while certificates say 99991231235959Z for "no expiry"
 * (RFC 5280, 4.1.2.5). Days from the civil date as in H. Hinnant's
 * "chrono-compatible low-level date algorithms".
 */
static inline time_t clock_timegm(const struct tm *tm)
{
    long long y = tm->tm_year + 1900LL, m = tm->tm_mon, era, yoe, doy, doe;
    y += m / 12;
    m %= 12;
    if (m < 0) {
        m += 12;
        y--;
    }
    y -= m < 2; /* the year from March: February's leap day comes last */
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * ((m + 10) % 12) + 2) / 5 + tm->tm_mday - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (time_t)((era * 146097 + doe - 719468) * 86400 + tm->tm_hour * 3600LL + tm->tm_min * 60LL + tm->tm_sec);
}

/* The user's calendar day of `t` (the local time zone) as a day number,
 * days since 1970-01-01. "Expires in N days" is the difference of two, the
 * way a person counts it from the dates; every such count in the agent (the
 * desktop reminder, the listing's reminder, the certificate check's window)
 * is made this one way. */
static inline long clock_local_day(time_t t)
{
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return (long)(t / 86400);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    return (long)(clock_timegm(&tm) / 86400);
}

#endif
