/* The socket layer (util/net.h) and the monotonic condition waits
 * (util/thread.h), on Linux and, built for Windows, under Wine: a loopback
 * listener that nobody else may bind, non-blocking accept, the socket pair
 * both ways and its EOF, poll, the error classes, and a timed wait that
 * really waits (winpthreads once made it return at once). */
#include "check.h"

#include "util/net.h"
#include "util/thread.h"

#include <errno.h>

static void test_listen_accept(int family)
{
    net_socket l = net_listen_loopback(family, 0, 4, 1), again, c, a;
    struct sockaddr_storage at, peer;
    socklen_t len, plen;
    unsigned port;
    char why[200];

    if (l == NET_INVALID) {
        printf("no %s loopback: skipped\n", family == AF_INET ? "IPv4" : "IPv6");
        return;
    }
    port = net_local_port(l);
    CHECK(port != 0);
    /* The port is ours alone. */
    again = net_listen_loopback(family, port, 4, 1);
    CHECK(again == NET_INVALID && net_addr_in_use());
    CHECK(net_strerror(why, sizeof why)[0] != '\0');
    net_close(again);
    /* Nobody waiting: no connection, try later. */
    CHECK(net_accept(l, &peer, &plen) == NET_INVALID && net_would_block());

    memset(&at, 0, sizeof at);
    at.ss_family = (unsigned short)family;
    if (family == AF_INET) {
        ((struct sockaddr_in *)&at)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ((struct sockaddr_in *)&at)->sin_port = htons((unsigned short)port);
        len = sizeof(struct sockaddr_in);
    } else {
        ((struct sockaddr_in6 *)&at)->sin6_addr = in6addr_loopback;
        ((struct sockaddr_in6 *)&at)->sin6_port = htons((unsigned short)port);
        len = sizeof(struct sockaddr_in6);
    }
    c = socket(family, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&at, len) == 0);
    {
        struct pollfd pf = {l, POLLIN, 0};
        CHECK(net_poll(&pf, 1, 5000) == 1 && (pf.revents & POLLIN));
    }
    a = net_accept(l, &peer, &plen);
    CHECK(a != NET_INVALID && peer.ss_family == family);
    CHECK(a == NET_INVALID || net_local_port(a) == port);
    net_close(a);
    net_close(c);
    net_close(l);
}

static void test_pair(void)
{
    net_socket sv[2];
    char buf[16];
    struct pollfd pf;

    CHECK(net_pair(sv) == 0);
    /* Non-blocking: nothing to read yet. */
    CHECK(net_recv(sv[0], buf, sizeof buf) < 0 && net_would_block());
    CHECK(net_send(sv[1], "ping", 4) == 4);
    pf = (struct pollfd){sv[0], POLLIN, 0};
    CHECK(net_poll(&pf, 1, 5000) == 1);
    CHECK(net_recv(sv[0], buf, sizeof buf) == 4 && memcmp(buf, "ping", 4) == 0);
    CHECK(net_send(sv[0], "pong", 4) == 4);
    pf = (struct pollfd){sv[1], POLLIN, 0};
    CHECK(net_poll(&pf, 1, 5000) == 1);
    CHECK(net_recv(sv[1], buf, sizeof buf) == 4 && memcmp(buf, "pong", 4) == 0);
    /* Shut down for writing: the other end reads EOF. */
    net_shutdown(sv[1], 0);
    pf = (struct pollfd){sv[0], POLLIN, 0};
    CHECK(net_poll(&pf, 1, 5000) == 1);
    CHECK(net_recv(sv[0], buf, sizeof buf) == 0);
    /* Nothing ready: poll times out. */
    pf = (struct pollfd){sv[1], POLLIN, 0};
    CHECK(net_poll(&pf, 1, 50) == 0);
    net_close(sv[0]);
    net_close(sv[1]);
}

static void test_timed_wait(void)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c;
    struct timespec deadline, t0, t1;
    long long ms;
    int rc;

    CHECK(thread_cond_init_monotonic(&c) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    thread_deadline(&deadline, 300);
    pthread_mutex_lock(&m);
    while ((rc = thread_cond_timedwait(&c, &m, &deadline)) == 0)
        ;
    pthread_mutex_unlock(&m);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK(rc == ETIMEDOUT);
    CHECK(ms >= 290 && ms < 5000);
    /* A deadline already past: at once. */
    thread_deadline(&deadline, -1000);
    pthread_mutex_lock(&m);
    CHECK(thread_cond_timedwait(&c, &m, &deadline) == ETIMEDOUT);
    pthread_mutex_unlock(&m);
    pthread_cond_destroy(&c);
}

int main(void)
{
    char err[128];
    CHECK(net_init(err, sizeof err) == 0);
    test_listen_accept(AF_INET);
    test_listen_accept(AF_INET6);
    test_pair();
    test_timed_wait();
    return check_done();
}
