/*
 * Joining a thread with a time limit, for stopping threads that may be
 * stuck in a vendor's library or a PC/SC wait: glibc's
 * pthread_timedjoin_np (join.c); winpthreads has none (join_win.c).
 */
#ifndef UKEY_UTIL_JOIN_H
#define UKEY_UTIL_JOIN_H

#include <pthread.h>

/* Joins `t` if it ends within `ms` milliseconds: 0; else ETIMEDOUT and `t`
 * is neither joined nor detached (join it again, or detach it); another
 * error number when `t` cannot be joined. */
int join_within(pthread_t t, long ms);

#endif
