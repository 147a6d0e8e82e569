/*
 * ukey-vcard: connects to pcscd's vpcd reader driver and answers as a PIV
 * or OpenPGP card (the state file's "profile") until the connection closes
 * or SIGTERM.
 *
 * vpcd protocol (vsmartcard): every message is a 2-byte big-endian length
 * and that many bytes. From the reader, 1 byte is a control code (0 power
 * off, 1 power on, 2 reset, 4 send the ATR); more is a command APDU,
 * answered with one response APDU.
 *
 * Usage: ukey-vcard --state FILE [--host 127.0.0.1] [--port 35963]
 *        [--log FILE] [--connect-timeout S] [--fault F]...
 * Faults: slow=MS, remove-after=N, sw=INS:SW, bad-tlv, truncate.
 */
#include "vcard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* T=1 ATR with historical bytes "ukeyvcrd"; TCK is computed at start. */
static unsigned char atr[] = {0x3b, 0x88, 0x80, 0x01, 'u', 'k', 'e', 'y', 'v', 'c', 'r', 'd', 0x00};

static int read_full(int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        /* vpcd writes the length and the APDU separately; without quick ACKs,
         * Nagle on its side and delayed ACK on ours add ~40 ms per APDU. */
        int one = 1;
        ssize_t n;
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
        n = recv(fd, buf + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static int send_msg(int fd, const unsigned char *data, size_t len)
{
    unsigned char hdr[2] = {(unsigned char)(len >> 8), (unsigned char)len};
    return send(fd, hdr, 2, MSG_NOSIGNAL) == 2 &&
                   (len == 0 || send(fd, data, len, MSG_NOSIGNAL) == (ssize_t)len)
               ? 0 : -1;
}

static int connect_reader(const char *host, unsigned port, unsigned timeout_s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    time_t until = time(NULL) + timeout_s;
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "ukey-vcard: --host must be an IPv4 address\n");
        return -1;
    }
    for (;;) {
        int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        if (fd >= 0)
            close(fd);
        if (time(NULL) >= until) {
            fprintf(stderr, "ukey-vcard: cannot reach the vpcd reader at %s:%u: %s\n", host, port,
                    strerror(errno));
            return -1;
        }
        usleep(100000);
    }
}

static int parse_fault(struct vcard_faults *f, const char *spec)
{
    unsigned a, b;
    if (sscanf(spec, "slow=%u", &a) == 1)
        f->slow_ms = a;
    else if (sscanf(spec, "remove-after=%u", &a) == 1)
        f->remove_after = a;
    else if (sscanf(spec, "sw=%x:%x", &a, &b) == 2 && a < 256 && b <= 0xffff)
        f->sw_ins = (int)a, f->sw_value = b;
    else if (strcmp(spec, "bad-tlv") == 0)
        f->bad_tlv = 1;
    else if (strcmp(spec, "truncate") == 0)
        f->truncate = 1;
    else
        return -1;
    return 0;
}

static void log_line(struct vcard *card, const char *what)
{
    if (card->log) {
        fprintf(card->log, "%s\n", what);
        fflush(card->log);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state", required_argument, NULL, 's'}, {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},  {"log", required_argument, NULL, 'l'},
        {"fault", required_argument, NULL, 'f'}, {"connect-timeout", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    struct vcard card;
    const char *state = NULL, *host = "127.0.0.1";
    unsigned port = 35963, timeout_s = 10;
    int c, fd, rc = 1;

    memset(&card, 0, sizeof card);
    card.faults.remove_after = -1;
    card.faults.sw_ins = -1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': state = optarg; break;
        case 'h': host = optarg; break;
        case 'p': port = (unsigned)strtoul(optarg, NULL, 10); break;
        case 't': timeout_s = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'l':
            if (!(card.log = fopen(optarg, "a"))) {
                fprintf(stderr, "ukey-vcard: cannot open %s\n", optarg);
                return 1;
            }
            break;
        case 'f':
            if (parse_fault(&card.faults, optarg) != 0) {
                fprintf(stderr, "ukey-vcard: unknown fault \"%s\" (slow=MS, remove-after=N, sw=INS:SW, bad-tlv, truncate)\n", optarg);
                return 2;
            }
            break;
        default:
            fprintf(stderr, "usage: ukey-vcard --state FILE [--host IP] [--port N] [--log FILE] [--fault F]...\n");
            return 2;
        }
    }
    if (!state) {
        fprintf(stderr, "ukey-vcard: --state FILE is required\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 1; i + 1 < sizeof atr; i++)
        atr[sizeof atr - 1] ^= atr[i];
    if (vcard_state_load(&card, state) != 0)
        goto out;
    if ((fd = connect_reader(host, port, timeout_s)) < 0)
        goto out;
    log_line(&card, "CTRL inserted");
    for (;;) {
        unsigned char hdr[2], msg[65536], resp[300];
        size_t len, resp_len = 0;
        if (read_full(fd, hdr, 2) != 0)
            break;
        len = (size_t)(hdr[0] << 8 | hdr[1]);
        if (read_full(fd, msg, len) != 0)
            break;
        if (len == 1) {
            static const char *const names[] = {"CTRL power-off", "CTRL power-on", "CTRL reset",
                                                "CTRL unknown", "CTRL atr"};
            log_line(&card, names[msg[0] < 5 ? msg[0] : 3]);
            if (msg[0] == 4) {
                if (send_msg(fd, atr, sizeof atr) != 0)
                    break;
            } else if (msg[0] <= 2) {
                vcard_reset(&card);
            }
            continue;
        }
        if (card.faults.remove_after >= 0 && card.apdus >= card.faults.remove_after) {
            log_line(&card, "FAULT removed");
            break; /* pulled out in the middle of this command */
        }
        card.apdus++;
        if (card.faults.slow_ms)
            usleep(card.faults.slow_ms * 1000u);
        vcard_apdu(&card, msg, len, resp, &resp_len);
        if (send_msg(fd, resp, resp_len) != 0)
            break;
    }
    close(fd);
    rc = 0;
out:
    vcard_state_free(&card);
    if (card.log)
        fclose(card.log);
    return rc;
}
