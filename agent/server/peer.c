/* Who may connect: the admission and its refusal lines; see peer.h. The
 * lookup of a connection's owner is the platform's: peer_owner.c (Linux,
 * sock_diag) and peer_owner_win.c (Windows). */
#include "server/peer.h"

#include "util/clock.h"
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static long long last_log_ms = -PEER_LOG_INTERVAL_MS;
static unsigned long unlogged;

int peer_admit(const struct sockaddr *client, unsigned server_port, const char *what)
{
    char why[160] = "", who[128] = "", self[128] = "", more[96] = "";
    int rc = peer_owner_check(client, server_port, who, sizeof who, self, sizeof self, why, sizeof why);
    long long t;

    if (rc == 1)
        return 1;
    t = clock_ms();
    pthread_mutex_lock(&log_lock);
    if (t - last_log_ms < PEER_LOG_INTERVAL_MS) {
        unlogged++;
        pthread_mutex_unlock(&log_lock);
        return 0;
    }
    if (unlogged)
        snprintf(more, sizeof more, " (and %lu more refused since the last such line)", unlogged);
    last_log_ms = t;
    unlogged = 0;
    pthread_mutex_unlock(&log_lock);
    if (rc == 0)
        log_warn("refused a connection to the %s port from %s: the agent serves only its own user (%s)%s", what,
                 who, self, more);
    else
        log_warn("refused a connection to the %s port: its owner cannot be determined (%s); "
                 "the agent serves only its own user (%s)%s", what, why, self, more);
    return 0;
}
