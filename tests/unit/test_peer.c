/* The owner of a loopback connection (server/peer.c): the inet_diag request
 * byte for byte, the kernel's answers (good, error, TIME_WAIT, another
 * socket, truncated at every length), and a real lookup of a connection of
 * ours through the kernel (IPv4 and, when there is one, IPv6 loopback). */
#include "check.h"

#include "server/peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <unistd.h>

struct answer {
    struct nlmsghdr h;
    struct inet_diag_msg m;
    unsigned char attrs[8]; /* an INET_DIAG_SHUTDOWN attribute, as the kernel adds */
};

static void make_answer(struct answer *a, int family, uint16_t port, unsigned state, unsigned uid)
{
    memset(a, 0, sizeof *a);
    a->h.nlmsg_len = sizeof *a;
    a->h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    a->m.idiag_family = (uint8_t)family;
    a->m.idiag_state = (uint8_t)state;
    a->m.id.idiag_sport = port;
    a->m.idiag_uid = uid;
    a->attrs[0] = 5; /* nla_len */
    a->attrs[2] = INET_DIAG_SHUTDOWN;
}

static void test_request(void)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(40001)};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(40002), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    struct sockaddr unix_sa = {.sa_family = AF_UNIX};
    union {
        struct nlmsghdr h;
        unsigned char b[256];
    } buf;
    struct inet_diag_req_v2 *r = NLMSG_DATA(&buf.h);
    size_t n;

    v4.sin_addr.s_addr = htonl(0x7f000005); /* 127.0.0.5 */
    n = peer_diag_request((struct sockaddr *)&v4, 27443, &buf, sizeof buf);
    CHECK(n == NLMSG_LENGTH(sizeof *r) && buf.h.nlmsg_len == n);
    CHECK(buf.h.nlmsg_type == SOCK_DIAG_BY_FAMILY && buf.h.nlmsg_flags == NLM_F_REQUEST); /* no dump */
    CHECK(r->sdiag_family == AF_INET && r->sdiag_protocol == IPPROTO_TCP && r->idiag_states == ~0u);
    /* The client's socket: its local end is the peer address, its remote end ours. */
    CHECK(r->id.idiag_sport == htons(40001) && r->id.idiag_dport == htons(27443));
    CHECK(r->id.idiag_src[0] == htonl(0x7f000005) && r->id.idiag_dst[0] == htonl(INADDR_LOOPBACK));
    CHECK(r->id.idiag_cookie[0] == INET_DIAG_NOCOOKIE && r->id.idiag_cookie[1] == INET_DIAG_NOCOOKIE);

    n = peer_diag_request((struct sockaddr *)&v6, 27443, &buf, sizeof buf);
    CHECK(n > 0 && r->sdiag_family == AF_INET6 && r->id.idiag_sport == htons(40002));
    CHECK(memcmp(r->id.idiag_src, &in6addr_loopback, 16) == 0 && memcmp(r->id.idiag_dst, &in6addr_loopback, 16) == 0);

    CHECK(peer_diag_request(&unix_sa, 27443, &buf, sizeof buf) == 0);
    CHECK(peer_diag_request((struct sockaddr *)&v4, 27443, &buf, 8) == 0);
}

static void test_parse(void)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(40001)};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(40001)};
    struct answer a;
    union {
        struct nlmsghdr h;
        unsigned char b[64];
    } err;
    struct nlmsgerr *e = NLMSG_DATA(&err.h);
    unsigned uid = 0;

    make_answer(&a, AF_INET, htons(40001), TCP_ESTABLISHED, 1000);
    CHECK(peer_diag_parse(&a, sizeof a, (struct sockaddr *)&v4, &uid) == 0 && uid == 1000);
    make_answer(&a, AF_INET6, htons(40001), TCP_FIN_WAIT2, 12345);
    CHECK(peer_diag_parse(&a, sizeof a, (struct sockaddr *)&v6, &uid) == 0 && uid == 12345);
    /* Another family or another socket than asked: not an answer about ours. */
    CHECK(peer_diag_parse(&a, sizeof a, (struct sockaddr *)&v4, &uid) == -ENOENT);
    make_answer(&a, AF_INET, htons(40002), TCP_ESTABLISHED, 1000);
    CHECK(peer_diag_parse(&a, sizeof a, (struct sockaddr *)&v4, &uid) == -ENOENT);
    /* TIME_WAIT: the kernel reports uid 0 for a socket that has no owner any more. */
    make_answer(&a, AF_INET, htons(40001), TCP_TIME_WAIT, 0);
    CHECK(peer_diag_parse(&a, sizeof a, (struct sockaddr *)&v4, &uid) == -ENOENT);

    /* Every truncation of a good answer is refused, never read past. */
    make_answer(&a, AF_INET, htons(40001), TCP_ESTABLISHED, 1000);
    for (size_t len = 0; len < NLMSG_LENGTH(sizeof a.m); len++) {
        struct answer t = a;
        int rc;
        t.h.nlmsg_len = (uint32_t)(len < sizeof t.h ? sizeof t.h : len);
        rc = peer_diag_parse(&t, len, (struct sockaddr *)&v4, &uid);
        CHECK(rc == -EBADMSG);
    }
    /* A length field larger than what arrived. */
    a.h.nlmsg_len = sizeof a + 64;
    CHECK(peer_diag_parse(&a, sizeof a, (struct sockaddr *)&v4, &uid) == -EBADMSG);

    /* The kernel's error, and NLMSG_DONE. */
    memset(&err, 0, sizeof err);
    err.h.nlmsg_len = NLMSG_LENGTH(sizeof *e);
    err.h.nlmsg_type = NLMSG_ERROR;
    e->error = -ENOENT;
    CHECK(peer_diag_parse(&err, err.h.nlmsg_len, (struct sockaddr *)&v4, &uid) == -ENOENT);
    e->error = -EPERM;
    CHECK(peer_diag_parse(&err, err.h.nlmsg_len, (struct sockaddr *)&v4, &uid) == -EPERM);
    e->error = 0; /* an acknowledgement is not an answer */
    CHECK(peer_diag_parse(&err, err.h.nlmsg_len, (struct sockaddr *)&v4, &uid) == -EBADMSG);
    err.h.nlmsg_len = NLMSG_LENGTH(2);
    CHECK(peer_diag_parse(&err, err.h.nlmsg_len, (struct sockaddr *)&v4, &uid) == -EBADMSG);
    err.h.nlmsg_len = NLMSG_LENGTH(0);
    err.h.nlmsg_type = NLMSG_DONE;
    CHECK(peer_diag_parse(&err, err.h.nlmsg_len, (struct sockaddr *)&v4, &uid) == -ENOENT);
}

/* A connection of our own through loopback: its owner is us, the lookup is
 * exact (the accepted server-side socket is not taken for the client's). */
static void test_live(int family)
{
    struct sockaddr_storage ss, client;
    socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    socklen_t clen = sizeof client;
    int one = 1, lfd = socket(family, SOCK_STREAM, 0), cfd = socket(family, SOCK_STREAM, 0), afd;
    unsigned port, uid = ~0u;
    char why[160] = "";

    memset(&ss, 0, sizeof ss);
    ss.ss_family = (sa_family_t)family;
    if (family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
    if (family == AF_INET6)
        setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&ss, len) != 0) {
        printf("no %s loopback: live lookup skipped\n", family == AF_INET ? "IPv4" : "IPv6");
        close(lfd);
        close(cfd);
        return;
    }
    CHECK(listen(lfd, 4) == 0 && getsockname(lfd, (struct sockaddr *)&ss, &len) == 0);
    port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
    CHECK(connect(cfd, (struct sockaddr *)&ss, len) == 0);
    afd = accept(lfd, (struct sockaddr *)&client, &clen);
    CHECK(afd >= 0);
    CHECK(peer_owner_uid((struct sockaddr *)&client, port, &uid, why, sizeof why) == 0);
    CHECK(uid == (unsigned)geteuid());
    CHECK(peer_admit((struct sockaddr *)&client, port, "test") == 1);
    /* Asked about a port nobody connected to: no such socket, refused. */
    CHECK(peer_owner_uid((struct sockaddr *)&client, port == 65535 ? 1 : port + 1, &uid, why, sizeof why) == -ENOENT);
    CHECK(strstr(why, "sock_diag") != NULL);
    CHECK(peer_admit((struct sockaddr *)&client, port == 65535 ? 1 : port + 1, "test") == 0);
    close(afd);
    close(cfd);
    close(lfd);
}

int main(void)
{
    test_request();
    test_parse();
    test_live(AF_INET);
    test_live(AF_INET6);
    return check_done();
}
