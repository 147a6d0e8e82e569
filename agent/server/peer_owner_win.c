/* The owner of a loopback connection on Windows; see peer.h.
 *
 * Windows: the TCP table row of the client's socket (local end: the address
 * accept() gave us; remote end: our loopback port), its owning PID, that
 * process's token user SID, compared with ours.
 *
 * Under Wine: the Linux view, /proc/net/tcp{,6} (read through Wine's
 * \\?\unix prefix), whose lines are
 *
 *   sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  ...
 *   0: 0100007F:B8F2 0100007F:6B33 01 00000000:00000000 00:00000000 00000000     0  ...
 *
 * with each address as 32-bit words in the kernel's (our) byte order, ports
 * and state in hex; our uid is that of /proc/self, which Wine resolves in
 * the wineserver, the owner of every socket of ours.
 */
#include "server/peer.h"

#include "util/wstr.h"

#include <ctype.h>
#include <errno.h>
#include <iphlpapi.h>
#include <sddl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#define TCP_STATE_TIME_WAIT 0x06 /* Linux's TCP_TIME_WAIT, as /proc/net/tcp prints it */
#define PROC_MAX (8u << 20)      /* a /proc/net/tcp larger than this is not read */

static uint16_t client_port(const struct sockaddr *client)
{
    return client->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)client)->sin6_port
                                         : ((const struct sockaddr_in *)client)->sin_port;
}

/* ---- Wine: the Unix user ------------------------------------------------ */

static int under_wine(void)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    return ntdll && GetProcAddress(ntdll, "wine_get_version");
}

/* Reads `words` hex words of 32 bits, ":" and a 4-digit hex port into
 * `addr` (byte order as the kernel keeps it) and `port`; returns the text
 * after them, or NULL. */
static const char *parse_endpoint(const char *p, unsigned words, unsigned char *addr, unsigned *port)
{
    for (unsigned i = 0; i <= words; i++) {
        unsigned digits = i < words ? 8 : 4;
        uint32_t w = 0;
        if (i == words && *p++ != ':')
            return NULL;
        for (unsigned k = 0; k < digits; k++, p++) {
            if (!isxdigit((unsigned char)*p))
                return NULL;
            w = w << 4 | (uint32_t)(isdigit((unsigned char)*p) ? *p - '0' : (*p | 0x20) - 'a' + 10);
        }
        if (i < words)
            memcpy(addr + 4 * i, &w, 4);
        else
            *port = w;
    }
    return p;
}

int peer_proc_net_uid(const char *text, const struct sockaddr *client, unsigned server_port, unsigned *uid)
{
    int v6 = client->sa_family == AF_INET6;
    unsigned words = v6 ? 4 : 1, want_port = ntohs(client_port(client));
    unsigned char want[16], loop[16];
    const char *line = strchr(text, '\n'), *eol = NULL;

    if (!v6 && client->sa_family != AF_INET)
        return -EAFNOSUPPORT;
    if (v6) {
        memcpy(want, &((const struct sockaddr_in6 *)client)->sin6_addr, 16);
        memcpy(loop, &in6addr_loopback, 16);
    } else {
        uint32_t lo = htonl(INADDR_LOOPBACK);
        memcpy(want, &((const struct sockaddr_in *)client)->sin_addr, 4);
        memcpy(loop, &lo, 4);
    }
    if (strncmp(text, "  sl", 4) != 0 || !line)
        return -EBADMSG;
    for (line++; *line; line = *eol ? eol + 1 : eol) {
        unsigned char local[16], remote[16];
        unsigned lport, rport, state, owner;
        const char *p = strchr(line, ':');
        char *end;
        eol = strchr(line, '\n');
        if (!eol)
            eol = line + strlen(line);
        if (!p || p > eol || p[1] != ' ' || !(p = parse_endpoint(p + 2, words, local, &lport)) || *p != ' ' ||
            !(p = parse_endpoint(p + 1, words, remote, &rport)) || *p != ' ')
            return -EBADMSG;
        if (lport != want_port || rport != server_port || memcmp(local, want, 4 * words) != 0 ||
            memcmp(remote, loop, 4 * words) != 0)
            continue;
        state = (unsigned)strtoul(p, &end, 16);
        /* then tx:rx, tr:when, retrnsmt, and the uid */
        if (end == p || sscanf(end, " %*x:%*x %*x:%*x %*x %u", &owner) != 1)
            return -EBADMSG;
        /* A TIME_WAIT socket has no owner (the kernel prints uid 0). */
        if (state == TCP_STATE_TIME_WAIT)
            return -ENOENT;
        *uid = owner;
        return 0;
    }
    return -ENOENT;
}

int peer_proc_status_uid(const char *text, unsigned *uid)
{
    const char *p = strstr(text, "\nUid:");
    return p && sscanf(p + 5, "%*u %u", uid) == 1 ? 0 : -EBADMSG;
}

/* The whole of a /proc file under \\?\unix, NUL-terminated (caller frees),
 * or NULL with `why`. */
static char *read_unix_file(const wchar_t *path, char *why, size_t whylen)
{
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
    size_t len = 0, cap = 65536;
    char *buf = NULL;
    DWORD n;

    if (h == INVALID_HANDLE_VALUE) {
        snprintf(why, whylen, "cannot open %ls: error %lu", path, GetLastError());
        return NULL;
    }
    for (;;) {
        char *more;
        if (len + 1 >= cap && (cap *= 2) > PROC_MAX)
            break;
        if (!(more = realloc(buf, cap)))
            break;
        buf = more;
        if (!ReadFile(h, buf + len, (DWORD)(cap - len - 1), &n, NULL))
            break;
        if (n == 0) {
            CloseHandle(h);
            buf[len] = 0;
            return buf;
        }
        len += n;
    }
    snprintf(why, whylen, "cannot read %ls", path);
    CloseHandle(h);
    free(buf);
    return NULL;
}

static int wine_owner_check(const struct sockaddr *client, unsigned server_port, char *who, size_t wholen,
                            char *self, size_t selflen, char *why, size_t whylen)
{
    char *status = read_unix_file(L"\\\\?\\unix\\proc\\self\\status", why, whylen), *table;
    unsigned me, uid;
    int rc;

    snprintf(self, selflen, "the Unix user of our wineserver");
    if (!status)
        return -EACCES;
    rc = peer_proc_status_uid(status, &me);
    free(status);
    if (rc != 0) {
        snprintf(why, whylen, "no Uid line in /proc/self/status");
        return rc;
    }
    snprintf(self, selflen, "uid %u", me);
    table = read_unix_file(client->sa_family == AF_INET6 ? L"\\\\?\\unix\\proc\\net\\tcp6"
                                                         : L"\\\\?\\unix\\proc\\net\\tcp",
                           why, whylen);
    if (!table)
        return -EACCES;
    rc = peer_proc_net_uid(table, client, server_port, &uid);
    free(table);
    if (rc != 0) {
        snprintf(why, whylen, "/proc/net/tcp: %s", rc == -ENOENT ? "no such connection (the client has gone)"
                                                                  : "not a TCP table");
        return rc;
    }
    snprintf(who, wholen, "uid %u", uid);
    return uid == me;
}

/* ---- Windows: the token's user ------------------------------------------ */

/* The owning PID of the client's socket, from the TCP table; 0 when there
 * is no such row, or a row with no owner. */
static DWORD table_owner_pid(const struct sockaddr *client, unsigned server_port, char *why, size_t whylen)
{
    int v6 = client->sa_family == AF_INET6;
    DWORD size = 0, rc = ERROR_INSUFFICIENT_BUFFER, pid = 0, port = client_port(client),
          ours = htons((uint16_t)server_port);
    void *t = NULL;

    /* The table may grow between the two calls: a few tries. */
    for (int i = 0; i < 4 && rc == ERROR_INSUFFICIENT_BUFFER; i++) {
        void *more = realloc(t, size ? size : 1);
        if (!more)
            break;
        t = more;
        rc = GetExtendedTcpTable(t, &size, FALSE, v6 ? AF_INET6 : AF_INET, TCP_TABLE_OWNER_PID_CONNECTIONS, 0);
    }
    if (rc != NO_ERROR) {
        snprintf(why, whylen, "GetExtendedTcpTable: error %lu", rc);
        free(t);
        return 0;
    }
    if (v6) {
        const MIB_TCP6TABLE_OWNER_PID *tab = t;
        const struct in6_addr *a = &((const struct sockaddr_in6 *)client)->sin6_addr;
        for (DWORD i = 0; i < tab->dwNumEntries && !pid; i++) {
            const MIB_TCP6ROW_OWNER_PID *r = &tab->table[i];
            if ((r->dwLocalPort & 0xffff) == port && (r->dwRemotePort & 0xffff) == ours &&
                memcmp(r->ucLocalAddr, a, 16) == 0 && memcmp(r->ucRemoteAddr, &in6addr_loopback, 16) == 0 &&
                r->dwState != MIB_TCP_STATE_TIME_WAIT)
                pid = r->dwOwningPid;
        }
    } else {
        const MIB_TCPTABLE_OWNER_PID *tab = t;
        DWORD a = ((const struct sockaddr_in *)client)->sin_addr.s_addr;
        for (DWORD i = 0; i < tab->dwNumEntries && !pid; i++) {
            const MIB_TCPROW_OWNER_PID *r = &tab->table[i];
            if ((r->dwLocalPort & 0xffff) == port && (r->dwRemotePort & 0xffff) == ours && r->dwLocalAddr == a &&
                r->dwRemoteAddr == htonl(INADDR_LOOPBACK) && r->dwState != MIB_TCP_STATE_TIME_WAIT)
                pid = r->dwOwningPid;
        }
    }
    free(t);
    if (!pid)
        snprintf(why, whylen, "no owning process in the TCP table (the client has gone, or the table does not "
                              "say)");
    return pid;
}

/* The token user of process `pid` (ours for 0): "user S-1-5-..." in `out`
 * and a copy of the SID in `*sid_copy` (caller frees). Returns 0, or a
 * negative errno with `why`. */
static int process_user(DWORD pid, char *out, size_t outlen, PSID *sid_copy, char *why, size_t whylen)
{
    union {
        TOKEN_USER u;
        unsigned char b[256];
    } info;
    HANDLE p = pid ? OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid) : GetCurrentProcess(), tok;
    DWORD n;
    wchar_t *ws = NULL;
    char *s;
    int ok;

    if (!p) {
        snprintf(why, whylen, "cannot open process %lu: error %lu", pid, GetLastError());
        return -EACCES;
    }
    ok = OpenProcessToken(p, TOKEN_QUERY, &tok);
    if (pid)
        CloseHandle(p);
    if (!ok) {
        snprintf(why, whylen, "cannot open the token of process %lu: error %lu", pid, GetLastError());
        return -EACCES;
    }
    ok = GetTokenInformation(tok, TokenUser, &info, sizeof info, &n);
    CloseHandle(tok);
    if (!ok) {
        snprintf(why, whylen, "cannot read the user of process %lu: error %lu", pid, GetLastError());
        return -EACCES;
    }
    s = ConvertSidToStringSidW(info.u.User.Sid, &ws) ? wstr_to_utf8(ws) : NULL;
    snprintf(out, outlen, "user %s", s ? s : "(unnamed SID)");
    free(s);
    LocalFree(ws);
    n = GetLengthSid(info.u.User.Sid);
    if (!(*sid_copy = malloc(n)) || !CopySid(n, *sid_copy, info.u.User.Sid)) {
        free(*sid_copy);
        *sid_copy = NULL;
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

int peer_owner_check(const struct sockaddr *client, unsigned server_port, char *who, size_t wholen, char *self,
                     size_t selflen, char *why, size_t whylen)
{
    PSID mine = NULL, theirs = NULL;
    DWORD pid;
    int rc;

    if (client->sa_family != AF_INET && client->sa_family != AF_INET6) {
        snprintf(self, selflen, "its own user");
        snprintf(why, whylen, "not an IPv4/IPv6 connection");
        return -EAFNOSUPPORT;
    }
    if (under_wine())
        return wine_owner_check(client, server_port, who, wholen, self, selflen, why, whylen);
    snprintf(self, selflen, "its own user");
    if ((rc = process_user(0, self, selflen, &mine, why, whylen)) != 0)
        return rc;
    if (!(pid = table_owner_pid(client, server_port, why, whylen)))
        rc = -ENOENT;
    else if ((rc = process_user(pid, who, wholen, &theirs, why, whylen)) == 0)
        rc = EqualSid(mine, theirs) ? 1 : 0;
    if (rc == 0) {
        size_t n = strlen(who);
        snprintf(who + n, wholen - n, " (pid %lu)", pid);
    }
    free(mine);
    free(theirs);
    return rc;
}
