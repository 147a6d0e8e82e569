/*
 * Desktop notifications, behind an interface small enough for a Windows
 * toast to implement later: connect, show one notification (with an
 * optional "renew" action that opens a URL), and a wait for the caller's
 * loop that also hears the desktop's answers.
 *
 * Windows (notify_win.c): not available yet; notify_open says so, and the
 * diagnostic page's banners are the reminders there.
 *
 * Linux (notify.c): the freedesktop Desktop Notifications
 * specification, org.freedesktop.Notifications on the session bus, which
 * GNOME, KDE, UOS and Kylin all serve. A click on the action comes back as
 * the ActionInvoked signal; notify_process() then has the desktop open
 * the URL (the XDG Desktop Portal's OpenURI, so that the browser does not
 * start inside the agent's sandbox), else runs xdg-open (spawned without a
 * shell, reaped while waiting).
 */
#ifndef UKEY_NOTIFY_NOTIFY_H
#define UKEY_NOTIFY_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct notifier;

/* Connects to the user's session (DBUS_SESSION_BUS_ADDRESS, else
 * $XDG_RUNTIME_DIR/bus) and subscribes to the server's answers. NULL with
 * a reason in `err` when there is no session bus (on Windows: always). */
struct notifier *notify_open(char *err, size_t errlen);

/*
 * Shows one notification: `summary` and `body` are UTF-8 text (escaped
 * here for servers that read markup); `url` (may be NULL) adds the action
 * "renew" (去续期 / Renew) that opens it. Returns 0, or -1 with a reason in
 * `err` when no notification server answers. Blocks at most a few seconds.
 */
int notify_show(struct notifier *n, const char *summary, const char *body, const char *url, char *err,
                size_t errlen);

/*
 * The caller's loop (one thread) waits here for wake-ups that other
 * threads post and for what the desktop sends at once.
 */
enum { NOTIFY_WAKE_TOKEN = 1, NOTIFY_WAKE_STOP = 2 };
struct notify_wake;

/* NULL with errno set. */
struct notify_wake *notify_wake_create(void);

/* Posts `what` (NOTIFY_WAKE_* bits); from any thread, never blocks. */
void notify_wake_post(struct notify_wake *w, unsigned what);

/* Waits at most `timeout_ms` for posts, and for the desktop's answers to
 * `n` when it is not NULL. Returns the bits posted since the last call (0:
 * the time ran out, or only the desktop spoke), or -1 with errno set. */
int notify_wait(struct notify_wake *w, struct notifier *n, int timeout_ms);

/* NULL is fine. */
void notify_wake_free(struct notify_wake *w);

/* Handles whatever the desktop sent (call after each notify_wait); opens
 * a URL whose action was invoked. 0, or -1 when the
 * connection is gone (the session ended): close it then. */
int notify_process(struct notifier *n);

/* Disconnects; NULL is fine. */
void notify_close(struct notifier *n);

/* 1 if `url` may be opened for the user: https://, or http:// on loopback
 * (127.0.0.1, [::1], localhost), with no control characters or spaces. */
int notify_url_allowed(const char *url);

#endif
