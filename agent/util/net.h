/*
 * The socket layer of the server rooms: one interface over BSD sockets
 * (net.c) and Winsock (net_win.c), so that tls.c, serve.c and probe.c carry
 * no platform code. Only what they need: loopback listeners, non-blocking
 * accept, send/recv without SIGPIPE, poll, a connected pair of sockets (the
 * relay to libmicrohttpd and the stop wake-up), and the last error's class
 * and text.
 *
 * Errors: a call that fails leaves the reason in the thread's last socket
 * error (errno / WSAGetLastError()); net_would_block(), net_conn_reset(),
 * net_addr_in_use() and net_strerror() read it, right after the call.
 */
#ifndef UKEY_UTIL_NET_H
#define UKEY_UTIL_NET_H

#include <stddef.h>
#include <sys/types.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET net_socket;
#define NET_INVALID INVALID_SOCKET
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
typedef int net_socket;
#define NET_INVALID (-1)
#endif

/* Once per process, before any other call here: Winsock's start-up on
 * Windows; on POSIX, a write to a closed peer becomes an error, not
 * SIGPIPE. Returns 0, or -1 with `err`. */
int net_init(char *err, size_t errlen);

void net_close(net_socket s);

/* Binds and listens on 127.0.0.1 (AF_INET) or [::1] (AF_INET6, v6 only) at
 * `port` (0: any free port), never on another address (invariant 1). The
 * port is ours alone: no SO_REUSEPORT on Linux (SO_REUSEADDR there only
 * skips TIME_WAIT); SO_EXCLUSIVEADDRUSE on Windows, where SO_REUSEADDR
 * would let another process take over the port. `nonblocking` for a
 * listener polled by our own loop. Returns the socket, or NET_INVALID with
 * the last error set. */
net_socket net_listen_loopback(int family, unsigned port, int backlog, int nonblocking);

/* The local port of a bound socket, 0 on error. */
static inline unsigned net_local_port(net_socket s)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(s, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* A non-blocking, non-inheritable connection from listener `l`, with the
 * peer's address; NET_INVALID when none is waiting or on error. Nagle's
 * algorithm is off (TCP_NODELAY): a TLS handshake's flight and an answer
 * go out in several writes, and the second waited for the client's
 * delayed ACK (40 ms on Linux, 200 ms on Windows) before it was sent. */
net_socket net_accept(net_socket l, struct sockaddr_storage *peer, socklen_t *peerlen);

/* Two connected, non-blocking, non-inheritable stream sockets. POSIX: an
 * AF_UNIX socketpair. Windows (Wine has no AF_UNIX): a loopback TCP
 * connection whose accepted end is checked to be our own connect, so that
 * no other process can slip in between; Nagle is off on both ends. Returns 0, or -1 with the last
 * error set. */
int net_pair(net_socket sv[2]);

/* send/recv on a non-blocking socket: bytes moved, 0 from recv at EOF,
 * -1 with the last error set. */
long net_send(net_socket s, const void *buf, size_t len);
long net_recv(net_socket s, void *buf, size_t len);

/* Shuts down the sending side (read_too: both sides); errors ignored. */
void net_shutdown(net_socket s, int read_too);

/* poll() / WSAPoll() over `n` entries, `timeout_ms` < 0 without end.
 * Returns the count of entries with revents, 0 on timeout, -1 on error
 * (an interrupted wait counts as 0). */
int net_poll(struct pollfd *fds, size_t n, int timeout_ms);

/* The last error: try again later (would block or interrupted); the peer
 * has gone (reset, aborted, broken pipe); the address is taken. */
int net_would_block(void);
int net_conn_reset(void);
int net_addr_in_use(void);

/* The last error as text, in `buf`, which it returns. */
const char *net_strerror(char *buf, size_t len);

#endif
