/* Stop requests on POSIX: SIGINT and SIGTERM; see stop.h. */
#include "server/stop.h"

#include "util/net.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile int *stop_flag;
static net_socket wake_pair[2] = {NET_INVALID, NET_INVALID};

static void on_signal(int sig)
{
    int saved = errno;
    (void)sig;
    *stop_flag = 1;
    if (net_send(wake_pair[1], "x", 1) < 0) {
        /* the flag alone stops the loop within a second */
    }
    errno = saved;
}

int stop_watch_start(volatile int *flag, net_socket *wake, char *err, size_t errlen)
{
    struct sigaction sa;
    char why[200];

    if (net_pair(wake_pair) != 0) {
        snprintf(err, errlen, "socketpair: %s", net_strerror(why, sizeof why));
        return -1;
    }
    stop_flag = flag;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    *wake = wake_pair[0];
    return 0;
}

void stop_watch_end(void)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    net_close(wake_pair[0]);
    net_close(wake_pair[1]);
    wake_pair[0] = wake_pair[1] = NET_INVALID;
}

int stop_request_running(char *err, size_t errlen)
{
    snprintf(err, errlen, "stop the agent with \"systemctl --user stop ukey-agent\" or a SIGTERM");
    return -1;
}
