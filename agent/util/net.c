/* The socket layer on POSIX (BSD sockets); see net.h. */
#include "util/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int net_init(char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

void net_close(net_socket s)
{
    if (s >= 0)
        close(s);
}

net_socket net_listen_loopback(int family, unsigned port, int backlog, int nonblocking)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1, fd;

    memset(&ss, 0, sizeof ss);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* invariant 1: never INADDR_ANY */
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    }
    fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return NET_INVALID;
    /* SO_REUSEADDR only skips TIME_WAIT; it never lets two listeners share a
     * port on Linux. No SO_REUSEPORT: a squatter must not share ours. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return NET_INVALID;
    }
    return fd;
}

net_socket net_accept(net_socket l, struct sockaddr_storage *peer, socklen_t *peerlen)
{
    int one = 1, fd;
    *peerlen = sizeof *peer;
    fd = accept4(l, (struct sockaddr *)peer, peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int net_pair(net_socket sv[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
}

long net_send(net_socket s, const void *buf, size_t len) { return (long)send(s, buf, len, MSG_NOSIGNAL); }

long net_recv(net_socket s, void *buf, size_t len) { return (long)recv(s, buf, len, 0); }

void net_shutdown(net_socket s, int read_too) { shutdown(s, read_too ? SHUT_RDWR : SHUT_WR); }

int net_poll(struct pollfd *fds, size_t n, int timeout_ms)
{
    int r = poll(fds, (nfds_t)n, timeout_ms);
    return r < 0 && errno == EINTR ? 0 : r;
}

int net_would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

int net_conn_reset(void) { return errno == EPIPE || errno == ECONNRESET; }

int net_addr_in_use(void) { return errno == EADDRINUSE; }

const char *net_strerror(char *buf, size_t len)
{
    snprintf(buf, len, "%s", strerror(errno));
    return buf;
}
