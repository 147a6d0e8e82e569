/*
 * Readiness of many sockets for the TLS front's loop, level-triggered like
 * poll(): epoll on Linux (poller.c), where a wait costs what is ready, not
 * what is watched (poll() walked every connection's two sockets at every
 * wake-up, which at 64 connections was the relay's largest cost); WSAPoll
 * on Windows (poller_win.c).
 */
#ifndef UKEY_SERVER_POLLER_H
#define UKEY_SERVER_POLLER_H

#include "util/net.h"

#include <stddef.h>

struct poller;

struct poller_event {
    void *tag;
    short revents; /* POLLIN, POLLOUT, POLLHUP, POLLERR */
};

/* Room for `max` sockets. NULL when out of memory or descriptors. */
struct poller *poller_new(size_t max);
void poller_free(struct poller *p);

/* Watches `s` for `events` (POLLIN | POLLOUT) instead of `old` (what the
 * last call for `s` gave; 0 when not watched); `events` 0 stops watching,
 * which must happen before `s` is closed. Returns 0, or -1. */
int poller_watch(struct poller *p, net_socket s, short old, short events, void *tag);

/* Waits up to `timeout_ms` (< 0: no end) for readiness; fills at most `max`
 * events. Returns their count, 0 on timeout or interruption, -1 on error. */
int poller_wait(struct poller *p, struct poller_event *ev, size_t max, int timeout_ms);

#endif
