/*
 * Who is at the other end of a loopback connection. The agent serves only
 * the OS user it runs as (docs/API.md "Who may connect"): loopback is not a
 * user boundary on a shared machine, so before any TLS or HTTP work each
 * accepted connection's client socket is looked up and its owner compared
 * with the agent's own user. Another user, or an owner that cannot be
 * determined, is refused (fail closed).
 *
 * Linux: NETLINK_SOCK_DIAG / inet_diag, an exact lookup of the client's
 * socket by its 4-tuple (its local end is the address accept() gave us, its
 * remote end our listening address); the answer carries the socket's uid.
 * Windows (later, behind the same peer_admit()): GetExtendedTcpTable with
 * TCP_TABLE_OWNER_PID_CONNECTIONS, the row whose local end is the client's
 * address and whose remote end is ours, its owning PID, OpenProcessToken and
 * the TokenUser SID compared with the agent's.
 */
#ifndef UKEY_SERVER_PEER_H
#define UKEY_SERVER_PEER_H

#include <stddef.h>
#include <sys/socket.h>

/* At most one refusal line per this many milliseconds; the refusals in
 * between are counted in the next line. */
#define PEER_LOG_INTERVAL_MS 10000

/*
 * Returns 1 when the connection from `client` (an AF_INET or AF_INET6
 * address as accept() gave it) to our loopback `server_port` (127.0.0.1 or
 * [::1], by the client's family) belongs to a process of the agent's own
 * user; 0 otherwise, and logs the refusal (rate-limited) naming `what`
 * ("HTTPS", "probe") and the client's uid or why it is unknown.
 * Thread-safe; makes no allocation.
 */
int peer_admit(const struct sockaddr *client, unsigned server_port, const char *what);

/*
 * The owner's uid of the client socket of that connection: 0 and `*uid`, or
 * a negative errno (-ENOENT: no such socket, or it has already closed) with
 * `why` saying what failed.
 */
int peer_owner_uid(const struct sockaddr *client, unsigned server_port, unsigned *uid, char *why,
                   size_t whylen);

/* The inet_diag wire format, apart for the unit test. peer_diag_request
 * fills `buf` with the request for that client socket and returns its
 * length (0 for an address family other than IPv4/IPv6, or a short buffer).
 * peer_diag_parse reads the kernel's answer: 0 and `*uid`, or a negative
 * errno (the kernel's error, -ENOENT for a socket in TIME_WAIT or another
 * socket than asked, -EBADMSG for a malformed answer). */
size_t peer_diag_request(const struct sockaddr *client, unsigned server_port, void *buf, size_t len);
int peer_diag_parse(const void *buf, size_t len, const struct sockaddr *client, unsigned *uid);

#endif
