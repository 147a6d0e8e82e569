/* The owner of a loopback connection on Linux (sock_diag); see peer.h.
 *
 * One request, one answer, on a netlink socket of its own per lookup (the
 * HTTPS front and the probe's thread call this at once):
 *
 *   request  nlmsghdr{SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST}
 *            inet_diag_req_v2{family, IPPROTO_TCP, states: all,
 *              id{sport: client port, dport: our port,
 *                 src: client address, dst: our address, cookie: none}}
 *   answer   nlmsghdr{SOCK_DIAG_BY_FAMILY} inet_diag_msg{..., idiag_uid, ...} [attributes]
 *            or nlmsghdr{NLMSG_ERROR} nlmsgerr{-errno}
 *
 * Without NLM_F_DUMP the kernel looks the socket up exactly
 * (inet_diag_find_one_icsk: established sockets whose local end is `src`
 * and remote end `dst`), so the answer is the client's socket, not ours.
 */
#include "server/peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct diag_request {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 req;
};

size_t peer_diag_request(const struct sockaddr *client, unsigned server_port, void *buf, size_t len)
{
    struct diag_request m;
    if (len < sizeof m)
        return 0;
    memset(&m, 0, sizeof m);
    m.nlh.nlmsg_len = sizeof m;
    m.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    m.nlh.nlmsg_flags = NLM_F_REQUEST;
    m.req.sdiag_protocol = IPPROTO_TCP;
    m.req.idiag_states = ~0u;
    m.req.id.idiag_dport = htons((uint16_t)server_port);
    m.req.id.idiag_cookie[0] = m.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    if (client->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)client;
        m.req.sdiag_family = AF_INET;
        m.req.id.idiag_sport = a->sin_port;
        memcpy(m.req.id.idiag_src, &a->sin_addr, sizeof a->sin_addr);
        m.req.id.idiag_dst[0] = htonl(INADDR_LOOPBACK);
    } else if (client->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)client;
        m.req.sdiag_family = AF_INET6;
        m.req.id.idiag_sport = a->sin6_port;
        memcpy(m.req.id.idiag_src, &a->sin6_addr, sizeof a->sin6_addr);
        memcpy(m.req.id.idiag_dst, &in6addr_loopback, sizeof in6addr_loopback);
    } else {
        return 0;
    }
    memcpy(buf, &m, sizeof m);
    return sizeof m;
}

int peer_diag_parse(const void *buf, size_t len, const struct sockaddr *client, unsigned *uid)
{
    const struct nlmsghdr *h;
    unsigned int remaining = len > 65536 ? 65536 : (unsigned int)len;
    uint16_t port = client->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)client)->sin6_port
                                                  : ((const struct sockaddr_in *)client)->sin_port;

    for (h = buf; NLMSG_OK(h, remaining); h = NLMSG_NEXT(h, remaining)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
            const struct nlmsgerr *e = NLMSG_DATA(h);
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof *e))
                return -EBADMSG;
            return e->error < 0 ? e->error : -EBADMSG;
        }
        if (h->nlmsg_type == NLMSG_DONE)
            return -ENOENT;
        if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
            struct inet_diag_msg m;
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof m))
                return -EBADMSG;
            memcpy(&m, NLMSG_DATA(h), sizeof m);
            if (m.idiag_family != client->sa_family || m.id.idiag_sport != port)
                return -ENOENT;
            /* A TIME_WAIT mini-socket has no owner (the kernel says uid 0). */
            if (m.idiag_state == TCP_TIME_WAIT)
                return -ENOENT;
            *uid = m.idiag_uid;
            return 0;
        }
    }
    return -EBADMSG;
}

int peer_owner_uid(const struct sockaddr *client, unsigned server_port, unsigned *uid, char *why,
                   size_t whylen)
{
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    unsigned char req[sizeof(struct diag_request)];
    /* nlmsghdr-aligned; an answer is one inet_diag_msg and a few attributes */
    union {
        struct nlmsghdr h;
        unsigned char b[2048];
    } ans;
    size_t n = peer_diag_request(client, server_port, req, sizeof req);
    ssize_t got;
    int fd, rc;

    if (n == 0) {
        snprintf(why, whylen, "not an IPv4/IPv6 connection");
        return -EAFNOSUPPORT;
    }
    if ((fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) < 0) {
        rc = -errno;
        snprintf(why, whylen, "sock_diag: %s", strerror(errno));
        return rc;
    }
    /* The kernel answers while handling sendto(), so the answer is queued by
     * the time recv() runs: MSG_DONTWAIT never waits for it. */
    if (sendto(fd, req, n, 0, (struct sockaddr *)&kernel, sizeof kernel) != (ssize_t)n ||
        (got = recv(fd, &ans, sizeof ans, MSG_DONTWAIT)) < 0) {
        rc = -errno;
        snprintf(why, whylen, "sock_diag: %s", strerror(errno));
        close(fd);
        return rc;
    }
    close(fd);
    if ((rc = peer_diag_parse(&ans, (size_t)got, client, uid)) != 0)
        snprintf(why, whylen, "sock_diag: %s", rc == -ENOENT ? "no such connection (the client has gone)"
                                                             : strerror(-rc));
    return rc;
}

int peer_owner_check(const struct sockaddr *client, unsigned server_port, char *who, size_t wholen, char *self,
                     size_t selflen, char *why, size_t whylen)
{
    unsigned uid = 0, me = (unsigned)geteuid();
    int rc = peer_owner_uid(client, server_port, &uid, why, whylen);
    snprintf(self, selflen, "uid %u", me);
    if (rc != 0)
        return rc;
    snprintf(who, wholen, "uid %u", uid);
    return uid == me;
}
