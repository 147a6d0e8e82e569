/* Who may connect: the admission and its refusal lines; see peer.h. The
 * lookup of a connection's owner is the platform's: peer_owner.c (Linux,
 * sock_diag) and peer_owner_win.c (Windows). */
#include "server/peer.h"

#include "util/log.h"

#include <stdio.h>

static struct log_limit refusals = LOG_LIMIT_INIT(PEER_LOG_INTERVAL_MS);

int peer_admit(const struct sockaddr *client, unsigned server_port, const char *what)
{
    char why[160] = "", who[128] = "", self[128] = "", more[96] = "";
    int rc = peer_owner_check(client, server_port, who, sizeof who, self, sizeof self, why, sizeof why);
    unsigned long held;

    if (rc == 1)
        return 1;
    if (!log_limit_pass(&refusals, &held))
        return 0;
    if (held)
        snprintf(more, sizeof more, " (and %lu more refused since the last such line)", held);
    if (rc == 0)
        log_warn("refused a connection to the %s port from %s: the agent serves only its own user (%s)%s", what,
                 who, self, more);
    else
        log_warn("refused a connection to the %s port: its owner cannot be determined (%s); "
                 "the agent serves only its own user (%s)%s", what, why, self, more);
    return 0;
}
