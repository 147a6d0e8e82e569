/*
 * How `ukey-agent serve` is asked to stop, from outside its event loop.
 * POSIX (stop.c): SIGINT and SIGTERM. Windows (stop_win.c): the console's
 * Ctrl+C / Ctrl+Break / close / log-off / shut-down events (Wine turns a
 * SIGINT into CTRL_C_EVENT), the session's end (WM_QUERYENDSESSION /
 * WM_ENDSESSION to a hidden window; an agent started without a console
 * gets no console events), and the named event
 * "Local\ukey-agent-stop-<user name>" that `ukey-agent stop` (an installer's
 * uninstaller) sets.
 *
 * Each sets the flag and makes the wake socket readable, which the event
 * loop (tls_front_run) polls; the loop then returns, serve shuts down, and
 * stop_watch_end tells a waiting log-off or console-close handler that it
 * may let the system end the process.
 */
#ifndef UKEY_SERVER_STOP_H
#define UKEY_SERVER_STOP_H

#include "util/net.h"

#include <stddef.h>

/* Installs the stop sources: `*flag` becomes non-zero and `*wake` readable
 * once a stop is asked. Returns 0, or -1 with `err`. */
int stop_watch_start(volatile int *flag, net_socket *wake, char *err, size_t errlen);

/* Serve has shut down: removes the stop sources and closes the wake socket. */
void stop_watch_end(void);

/* `ukey-agent stop`: asks this user's agent in this session to stop and
 * waits (a few seconds at most) until it has shut down. Returns 0, or -1
 * with `err`: none is running, it did not stop in time, or (POSIX) the
 * service manager or a signal is the way to stop it. */
int stop_request_running(char *err, size_t errlen);

#endif
