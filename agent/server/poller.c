/* The front's readiness on Linux: epoll; see poller.h. */
#include "server/poller.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct poller {
    int fd;
    size_t max;
    struct epoll_event *ev;
};

struct poller *poller_new(size_t max)
{
    struct poller *p = calloc(1, sizeof *p);
    if (!p || !(p->ev = calloc(max, sizeof *p->ev)) || (p->fd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        if (p)
            free(p->ev);
        free(p);
        return NULL;
    }
    p->max = max;
    return p;
}

void poller_free(struct poller *p)
{
    if (!p)
        return;
    close(p->fd);
    free(p->ev);
    free(p);
}

int poller_watch(struct poller *p, net_socket s, short old, short events, void *tag)
{
    struct epoll_event e = {.events = (events & POLLIN ? EPOLLIN : 0) | (events & POLLOUT ? EPOLLOUT : 0),
                            .data.ptr = tag};
    int op = !events ? EPOLL_CTL_DEL : !old ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (old == events)
        return 0;
    return epoll_ctl(p->fd, op, s, &e) == 0 ? 0 : -1;
}

int poller_wait(struct poller *p, struct poller_event *ev, size_t max, int timeout_ms)
{
    int n = epoll_wait(p->fd, p->ev, (int)(max < p->max ? max : p->max), timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        uint32_t e = p->ev[i].events;
        ev[i].tag = p->ev[i].data.ptr;
        ev[i].revents = (short)((e & EPOLLIN ? POLLIN : 0) | (e & EPOLLOUT ? POLLOUT : 0) |
                                (e & EPOLLHUP ? POLLHUP : 0) | (e & EPOLLERR ? POLLERR : 0));
    }
    return n;
}
