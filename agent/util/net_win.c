/* The socket layer on Windows (Winsock 2); see net.h. */
#include "util/net.h"

#include "util/wstr.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <windows.h>

/* Tries before net_pair gives up on connections that are not its own. */
#define PAIR_ACCEPT_TRIES 8

int net_init(char *err, size_t errlen)
{
    WSADATA w;
    int rc = WSAStartup(MAKEWORD(2, 2), &w);
    if (rc != 0) {
        snprintf(err, errlen, "WSAStartup: error %d", rc);
        return -1;
    }
    return 0;
}

void net_close(net_socket s)
{
    if (s != INVALID_SOCKET)
        closesocket(s);
}

/* A stream socket that child processes do not inherit. */
static net_socket new_socket(int family)
{
    return WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
}

static int set_nonblocking(net_socket s)
{
    u_long one = 1;
    return ioctlsocket(s, FIONBIO, &one) == 0 ? 0 : -1;
}

/* No Nagle: see net_accept in net.h. */
static void set_nodelay(net_socket s)
{
    BOOL one = TRUE;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
}

/* Closes `s` without losing the error that made us give up on it. */
static void close_keep_error(net_socket s)
{
    int saved = WSAGetLastError();
    closesocket(s);
    WSASetLastError(saved);
}

static socklen_t loopback_addr(int family, unsigned port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* invariant 1: never INADDR_ANY */
        return sizeof *a;
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    a->sin6_addr = in6addr_loopback;
    return sizeof *a;
}

net_socket net_listen_loopback(int family, unsigned port, int backlog, int nonblocking)
{
    struct sockaddr_storage ss;
    socklen_t len = loopback_addr(family, port, &ss);
    BOOL one = TRUE;
    net_socket s = new_socket(family);

    if (s == INVALID_SOCKET)
        return INVALID_SOCKET;
    /* Nobody else may bind this port, not even with SO_REUSEADDR (which on
     * Windows would let another process steal it): security.md WEB-08. */
    if (setsockopt(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&one, sizeof one) != 0 ||
        (family == AF_INET6 && setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, (const char *)&one, sizeof one) != 0) ||
        bind(s, (struct sockaddr *)&ss, len) != 0 || listen(s, backlog) != 0 ||
        (nonblocking && set_nonblocking(s) != 0)) {
        close_keep_error(s);
        return INVALID_SOCKET;
    }
    return s;
}

net_socket net_accept(net_socket l, struct sockaddr_storage *peer, socklen_t *peerlen)
{
    net_socket s;
    *peerlen = sizeof *peer;
    s = accept(l, (struct sockaddr *)peer, peerlen);
    if (s == INVALID_SOCKET)
        return INVALID_SOCKET;
    if (!SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0) || set_nonblocking(s) != 0) {
        close_keep_error(s);
        return INVALID_SOCKET;
    }
    set_nodelay(s);
    return s;
}

/* Both IPv4 with the same address and port. */
static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
    return a->ss_family == AF_INET && b->ss_family == AF_INET && x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
}

int net_pair(net_socket sv[2])
{
    struct sockaddr_storage at, mine, theirs;
    socklen_t len;
    net_socket l, c = INVALID_SOCKET, a = INVALID_SOCKET;

    sv[0] = sv[1] = INVALID_SOCKET;
    if ((l = net_listen_loopback(AF_INET, 0, 1, 0)) == INVALID_SOCKET)
        return -1;
    len = loopback_addr(AF_INET, net_local_port(l), &at);
    if ((c = new_socket(AF_INET)) == INVALID_SOCKET || connect(c, (struct sockaddr *)&at, len) != 0)
        goto fail;
    len = sizeof mine;
    if (getsockname(c, (struct sockaddr *)&mine, &len) != 0)
        goto fail;
    /* Another local process may connect to the listener before us: only
     * the connection from our own socket's address is taken. */
    for (int i = 0; i < PAIR_ACCEPT_TRIES; i++) {
        len = sizeof theirs;
        if ((a = accept(l, (struct sockaddr *)&theirs, &len)) == INVALID_SOCKET)
            goto fail;
        if (same_addr(&theirs, &mine))
            break;
        closesocket(a);
        a = INVALID_SOCKET;
    }
    if (a == INVALID_SOCKET) {
        WSASetLastError(WSAECONNREFUSED);
        goto fail;
    }
    closesocket(l);
    if (!SetHandleInformation((HANDLE)a, HANDLE_FLAG_INHERIT, 0) || set_nonblocking(a) != 0 ||
        set_nonblocking(c) != 0) {
        closesocket(a);
        close_keep_error(c);
        return -1;
    }
    set_nodelay(a);
    set_nodelay(c);
    sv[0] = c;
    sv[1] = a;
    return 0;
fail:
    if (c != INVALID_SOCKET)
        close_keep_error(c);
    close_keep_error(l);
    return -1;
}

long net_send(net_socket s, const void *buf, size_t len)
{
    return send(s, buf, len > INT_MAX ? INT_MAX : (int)len, 0);
}

long net_recv(net_socket s, void *buf, size_t len)
{
    return recv(s, buf, len > INT_MAX ? INT_MAX : (int)len, 0);
}

void net_shutdown(net_socket s, int read_too) { shutdown(s, read_too ? SD_BOTH : SD_SEND); }

int net_poll(struct pollfd *fds, size_t n, int timeout_ms)
{
    int r = WSAPoll(fds, (ULONG)n, timeout_ms);
    return r == SOCKET_ERROR && WSAGetLastError() == WSAEINTR ? 0 : r;
}

int net_would_block(void)
{
    int e = WSAGetLastError();
    return e == WSAEWOULDBLOCK || e == WSAEINTR || e == WSAEINPROGRESS;
}

int net_conn_reset(void)
{
    int e = WSAGetLastError();
    return e == WSAECONNRESET || e == WSAECONNABORTED || e == WSAESHUTDOWN;
}

/* WSAEACCES: the port is held with SO_EXCLUSIVEADDRUSE by another socket. */
int net_addr_in_use(void)
{
    int e = WSAGetLastError();
    return e == WSAEADDRINUSE || e == WSAEACCES;
}

const char *net_strerror(char *buf, size_t len)
{
    int e = WSAGetLastError();
    wchar_t w[256];
    char *text = NULL;
    DWORD n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, (DWORD)e, 0, w,
                             sizeof w / sizeof w[0], NULL);
    while (n > 0 && (w[n - 1] == L'\r' || w[n - 1] == L'\n' || w[n - 1] == L' ' || w[n - 1] == L'.'))
        w[--n] = 0;
    if (n > 0)
        text = wstr_to_utf8(w);
    snprintf(buf, len, "%s (Winsock error %d)", text ? text : "socket error", e);
    free(text);
    return buf;
}
