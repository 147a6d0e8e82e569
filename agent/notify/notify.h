/*
 * Desktop notifications, behind an interface small enough for a Windows
 * toast to implement later: connect, show one notification (with an
 * optional "renew" action that opens a URL), and let the caller's loop
 * wait on one file descriptor for the desktop's answers.
 *
 * Linux (notify_dbus.c): the freedesktop Desktop Notifications
 * specification, org.freedesktop.Notifications on the session bus, which
 * GNOME, KDE, UOS and Kylin all serve. A click on the action comes back as
 * the ActionInvoked signal; notify_process() then has the desktop open
 * the URL (the XDG Desktop Portal's OpenURI, so that the browser does not
 * start inside the agent's sandbox), else runs xdg-open (notify_open_url).
 */
#ifndef UKEY_NOTIFY_NOTIFY_H
#define UKEY_NOTIFY_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct notifier;

/* Connects to the user's session (DBUS_SESSION_BUS_ADDRESS, else
 * $XDG_RUNTIME_DIR/bus) and subscribes to the server's answers. NULL with
 * a reason in `err` when there is no session bus. */
struct notifier *notify_open(char *err, size_t errlen);

/*
 * Shows one notification: `summary` and `body` are UTF-8 text (escaped
 * here for servers that read markup); `url` (may be NULL) adds the action
 * "renew" (去续期 / Renew) that opens it. Returns 0, or -1 with a reason in
 * `err` when no notification server answers. Blocks at most a few seconds.
 */
int notify_show(struct notifier *n, const char *summary, const char *body, const char *url, char *err,
                size_t errlen);

/* What to poll: the descriptor, its poll events, and the longest wait in
 * milliseconds (-1: none). */
int notify_fd(struct notifier *n, short *events, int *timeout_ms);

/* Handles whatever the desktop sent (call after poll says so, and before
 * each poll); opens a URL whose action was invoked. 0, or -1 when the
 * connection is gone (the session ended): close it then. */
int notify_process(struct notifier *n);

/* Disconnects; NULL is fine. */
void notify_close(struct notifier *n);

/* 1 if `url` may be opened for the user: https://, or http:// on loopback
 * (127.0.0.1, [::1], localhost), with no control characters or spaces. */
int notify_url_allowed(const char *url);

/* Opens `url` (checked with notify_url_allowed) with xdg-open found on
 * PATH, spawned without a shell; the child is reaped by a later
 * notify_reap(). 0, or -1 (logged). */
int notify_open_url(const char *url);

/* Reaps openers that have exited (non-blocking); returns how many still run. */
int notify_reap(void);

#endif
