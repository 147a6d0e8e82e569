/* The owner of a loopback connection on Windows (server/peer_owner_win.c):
 * the /proc/net/tcp{,6} and /proc/<pid>/status readers used under Wine
 * (good lines, TIME_WAIT, another connection, malformed and truncated
 * text), and a real lookup of a connection of ours (under Wine through
 * /proc, on Windows through the TCP table and the token's SID). Replaces
 * test_peer.c on Windows. */
#include "check.h"

#include "server/peer.h"
#include "util/net.h"

#include <errno.h>
#include <stdlib.h>

static const char tcp4[] =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 0100007F:6B33 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n"
    "   1: 0100007F:9C41 0100007F:6B33 06 00000000:00000000 03:00000F4E 00000000     0        0 0 3 0\n"
    "   2: 0100007F:9C40 0100007F:6B34 01 00000000:00000000 00:00000000 00000000  2000        0 2 1 0 20 4 30 10 -1\n"
    "   3: 0100007F:9C40 0100007F:6B33 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1\n";

static const char tcp6[] =
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr "
    "tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000001000000:9C40 00000000000000000000000001000000:6B33 01 00000000:00000000 "
    "00:00000000 00000000  1001        0 7 1 0 20 4 30 10 -1\n";

static void test_proc_net(void)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(0x9C40)};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(0x9C40)};
    struct sockaddr_in gone = {.sin_family = AF_INET, .sin_port = htons(0x9C41)};
    unsigned uid = 0;
    char *t;

    v4.sin_addr.s_addr = gone.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    v6.sin6_addr = in6addr_loopback;
    /* The client's socket to our port, not the one to the port beside it. */
    CHECK(peer_proc_net_uid(tcp4, (struct sockaddr *)&v4, 0x6B33, &uid) == 0 && uid == 1000);
    CHECK(peer_proc_net_uid(tcp4, (struct sockaddr *)&v4, 0x6B34, &uid) == 0 && uid == 2000);
    CHECK(peer_proc_net_uid(tcp4, (struct sockaddr *)&v4, 0x6B35, &uid) == -ENOENT);
    /* TIME_WAIT has no owner. */
    CHECK(peer_proc_net_uid(tcp4, (struct sockaddr *)&gone, 0x6B33, &uid) == -ENOENT);
    CHECK(peer_proc_net_uid(tcp6, (struct sockaddr *)&v6, 0x6B33, &uid) == 0 && uid == 1001);
    CHECK(peer_proc_net_uid(tcp6, (struct sockaddr *)&v4, 0x6B33, &uid) == -EBADMSG);
    CHECK(peer_proc_net_uid("", (struct sockaddr *)&v4, 0x6B33, &uid) == -EBADMSG);
    CHECK(peer_proc_net_uid("not a table\n", (struct sockaddr *)&v4, 0x6B33, &uid) == -EBADMSG);
    /* Cut at every length: an answer, never a read past the end. */
    t = malloc(sizeof tcp4);
    for (size_t n = 0; t && n < sizeof tcp4; n++) {
        int rc;
        memcpy(t, tcp4, n);
        t[n] = 0;
        rc = peer_proc_net_uid(t, (struct sockaddr *)&v4, 0x6B33, &uid);
        CHECK(rc == 0 || rc == -ENOENT || rc == -EBADMSG);
    }
    free(t);
    CHECK(peer_proc_status_uid("Name:\twineserver\nUid:\t1000\t1001\t1001\t1001\nGid:\t0\n", &uid) == 0 &&
          uid == 1001);
    CHECK(peer_proc_status_uid("Name:\twineserver\nGid:\t0\n", &uid) == -EBADMSG);
}

/* A connection of our own through loopback: its owner is us. */
static void test_live(int family)
{
    struct sockaddr_storage client;
    socklen_t clen;
    net_socket l = net_listen_loopback(family, 0, 4, 0), c, a;
    struct sockaddr_storage at;
    unsigned port;
    char who[128] = "", self[128] = "", why[160] = "";

    if (l == NET_INVALID) {
        printf("no %s loopback: live lookup skipped\n", family == AF_INET ? "IPv4" : "IPv6");
        return;
    }
    port = net_local_port(l);
    memset(&at, 0, sizeof at);
    at.ss_family = (short)family;
    if (family == AF_INET) {
        ((struct sockaddr_in *)&at)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ((struct sockaddr_in *)&at)->sin_port = htons((u_short)port);
    } else {
        ((struct sockaddr_in6 *)&at)->sin6_addr = in6addr_loopback;
        ((struct sockaddr_in6 *)&at)->sin6_port = htons((u_short)port);
    }
    c = socket(family, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&at,
                  family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) == 0);
    a = net_accept(l, &client, &clen);
    CHECK(a != NET_INVALID);
    CHECK(peer_owner_check((struct sockaddr *)&client, port, who, sizeof who, self, sizeof self, why, sizeof why) == 1);
    printf("own connection: %s%s\n", self, why[0] ? why : "");
    CHECK(peer_admit((struct sockaddr *)&client, port, "test") == 1);
    /* Asked about a port nobody connected to: unknown, refused. */
    CHECK(peer_owner_check((struct sockaddr *)&client, port == 65535 ? 1 : port + 1, who, sizeof who, self,
                           sizeof self, why, sizeof why) < 0);
    CHECK(peer_admit((struct sockaddr *)&client, port == 65535 ? 1 : port + 1, "test") == 0);
    net_close(a);
    net_close(c);
    net_close(l);
}

int main(void)
{
    char err[128];
    CHECK(net_init(err, sizeof err) == 0);
    test_proc_net();
    test_live(AF_INET);
    test_live(AF_INET6);
    return check_done();
}
