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
 * Windows (peer_owner_win.c): GetExtendedTcpTable with
 * TCP_TABLE_OWNER_PID_CONNECTIONS, the row whose local end is the client's
 * address and whose remote end is ours, its owning PID, OpenProcessToken and
 * the TokenUser SID compared with the agent's. No row, PID 0 (no owning
 * process: TIME_WAIT, or a table that does not know) or a process we may not
 * open is refused.
 *
 * Under Wine the Windows identities are not the boundary: every Wine
 * process, of whatever Unix user, has the same user SID (S-1-5-21-0-0-0-1000),
 * and Wine 8's table gives PID 0 for every socket, ours too (its sockets
 * live in the wineserver; since 9.17 the table comes from the wineserver,
 * which knows no Linux process's socket). So under Wine (ntdll exports
 * wine_get_version) the check
 * is the Linux one read through Wine's \\?\unix\ paths: the client
 * socket's uid in /proc/net/tcp{,6} against the uid of our wineserver,
 * which owns our sockets (/proc/self when Wine opens it). On real Windows
 * those paths do not exist, so that branch fails closed there too.
 */
#ifndef UKEY_SERVER_PEER_H
#define UKEY_SERVER_PEER_H

#include "util/net.h"

#include <stddef.h>

/* At most one refusal line per this many milliseconds; the refusals in
 * between are counted in the next line. */
#define PEER_LOG_INTERVAL_MS 10000

/*
 * Returns 1 when the connection from `client` (an AF_INET or AF_INET6
 * address as accept() gave it) to our loopback `server_port` (127.0.0.1 or
 * [::1], by the client's family) belongs to a process of the agent's own
 * user; 0 otherwise, and logs the refusal (rate-limited) naming `what`
 * ("HTTPS", "probe") and the client's owner or why it is unknown.
 * Thread-safe.
 */
int peer_admit(const struct sockaddr *client, unsigned server_port, const char *what);

/*
 * The platform's lookup behind peer_admit: 1 when the client socket of that
 * connection belongs to the agent's own user, 0 when to another (`who`
 * names it: "uid 1001", "user S-1-5-21-... (pid 4242)"), or a negative errno
 * when its owner cannot be determined (`why` says why). `self` always gets
 * the agent's own user in the same words.
 */
int peer_owner_check(const struct sockaddr *client, unsigned server_port, char *who, size_t wholen, char *self,
                     size_t selflen, char *why, size_t whylen);

/* Linux (peer_owner.c). */

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

/* Windows under Wine (peer_owner_win.c), apart for the unit test.
 * peer_proc_net_uid reads the text of /proc/net/tcp (IPv4 client) or
 * /proc/net/tcp6 (IPv6): 0 and the uid of the client's socket (its local
 * end `client`, its remote end our loopback `server_port`), -ENOENT when
 * there is none or it is in TIME_WAIT, -EBADMSG for text that is not such
 * a table. peer_proc_status_uid reads /proc/<pid>/status: 0 and the
 * effective uid, or -EBADMSG. */
int peer_proc_net_uid(const char *text, const struct sockaddr *client, unsigned server_port, unsigned *uid);
int peer_proc_status_uid(const char *text, unsigned *uid);

#endif
