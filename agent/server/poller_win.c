/* The front's readiness on Windows: WSAPoll over the watched sockets; see
 * poller.h. */
#include "server/poller.h"

#include <stdlib.h>

struct poller {
    size_t n, max;
    struct pollfd *fds;
    void **tags;
};

struct poller *poller_new(size_t max)
{
    struct poller *p = calloc(1, sizeof *p);
    if (!p || !(p->fds = calloc(max, sizeof *p->fds)) || !(p->tags = calloc(max, sizeof *p->tags))) {
        if (p)
            free(p->fds);
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
    free(p->fds);
    free(p->tags);
    free(p);
}

int poller_watch(struct poller *p, net_socket s, short old, short events, void *tag)
{
    size_t i = 0;
    if (old == events)
        return 0;
    while (i < p->n && p->fds[i].fd != s)
        i++;
    if (!events) {
        if (i < p->n) {
            p->fds[i] = p->fds[--p->n];
            p->tags[i] = p->tags[p->n];
        }
        return 0;
    }
    if (i == p->n) {
        if (p->n == p->max)
            return -1;
        p->n++;
    }
    p->fds[i] = (struct pollfd){s, events, 0};
    p->tags[i] = tag;
    return 0;
}

int poller_wait(struct poller *p, struct poller_event *ev, size_t max, int timeout_ms)
{
    size_t k = 0;
    int r = net_poll(p->fds, p->n, timeout_ms);
    if (r <= 0)
        return r;
    for (size_t i = 0; i < p->n && k < max; i++)
        if (p->fds[i].revents)
            ev[k++] = (struct poller_event){p->tags[i], p->fds[i].revents};
    return (int)k;
}
