/*
 * notify.h over D-Bus: a client of org.freedesktop.Notifications
 * (Desktop Notifications Specification 1.2) on the session bus.
 *
 * Why sd-bus (libsystemd) rather than libdbus-1: sd-bus builds messages
 * from a signature string in one call, has a plain poll()able descriptor
 * and synchronous calls with a timeout, and needs no main-loop glue or
 * threading setup; libdbus-1's own documentation calls its low-level API
 * painful to use directly. apt itself depends on libsystemd0, so every
 * Debian system has it: the agent gains no new runtime package, only
 * libsystemd-dev for the build.
 *
 * libsystemd is loaded by the first notify_open, that is when the first
 * reminder is due, not when the agent starts: most agents never show one,
 * and its dependencies (libgcrypt, liblzma, libzstd, liblz4, libcap) would
 * cost every start-up and idle memory. The .deb still depends on
 * libsystemd0 (CMakeLists.txt).
 *
 * Only the reminders thread (notify/reminders.c) calls these; nothing here
 * is shared between threads.
 */
#include "notify/notify.h"

#include "util/dynlib.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#define NOTIFY_DEST "org.freedesktop.Notifications"
#define NOTIFY_PATH "/org/freedesktop/Notifications"
#define NOTIFY_IFACE "org.freedesktop.Notifications"
#define NOTIFY_CALL_US (5 * 1000 * 1000)
#define NOTIFY_MAX_LIVE 16   /* notifications with a URL we still answer for */
#define NOTIFY_MAX_OPENERS 8 /* xdg-open children not yet reaped */

extern char **environ;

#define SYSTEMD_LIBRARY "libsystemd.so.0"

/* The calls of sd-bus made here, from the loaded library. */
static struct {
    int (*open_user)(sd_bus **bus);
    int (*match_signal)(sd_bus *bus, sd_bus_slot **slot, const char *sender, const char *path,
                        const char *iface, const char *member, sd_bus_message_handler_t callback, void *userdata);
    sd_bus_slot *(*slot_unref)(sd_bus_slot *slot);
    sd_bus *(*flush_close_unref)(sd_bus *bus);
    int (*call_method)(sd_bus *bus, const char *dest, const char *path, const char *iface, const char *member,
                       sd_bus_error *error, sd_bus_message **reply, const char *types, ...);
    int (*message_new_method_call)(sd_bus *bus, sd_bus_message **m, const char *dest, const char *path,
                                   const char *iface, const char *member);
    int (*message_append)(sd_bus_message *m, const char *types, ...);
    int (*message_enter_container)(sd_bus_message *m, char type, const char *contents);
    int (*message_read)(sd_bus_message *m, const char *types, ...);
    sd_bus_message *(*message_unref)(sd_bus_message *m);
    int (*call)(sd_bus *bus, sd_bus_message *m, uint64_t usec, sd_bus_error *error, sd_bus_message **reply);
    void (*error_free)(sd_bus_error *error);
    int (*get_fd)(sd_bus *bus);
    int (*get_events)(sd_bus *bus);
    int (*get_timeout)(sd_bus *bus, uint64_t *usec);
    int (*process)(sd_bus *bus, sd_bus_message **m);
} sd;
static int sd_loaded;

#define FN(x) {"sd_bus_" #x, (void **)&sd.x}

/* Loads libsystemd, once it works. 0, or -1 with the reason in `err`. */
static int load_sd_bus(char *err, size_t errlen)
{
    const struct { const char *name; void **slot; } fns[] = {
        FN(open_user), FN(match_signal), FN(slot_unref), FN(flush_close_unref),
        FN(call_method), FN(message_new_method_call), FN(message_append), FN(message_enter_container),
        FN(message_read), FN(message_unref), FN(call), FN(error_free),
        FN(get_fd), FN(get_events), FN(get_timeout), FN(process),
    };
    struct dynlib *dl;
    char why[256];
    if (sd_loaded)
        return 0;
    if (!(dl = dynlib_open(SYSTEMD_LIBRARY, why, sizeof why))) {
        snprintf(err, errlen, "notifications need libsystemd (the libsystemd0 package), which cannot be loaded: %s",
                 why);
        return -1;
    }
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        if (!(*fns[i].slot = dynlib_sym(dl, fns[i].name))) {
            snprintf(err, errlen, "%s lacks %s", SYSTEMD_LIBRARY, fns[i].name);
            return -1;
        }
    }
    sd_loaded = 1;
    return 0;
}

#undef FN

struct live {
    uint32_t id;
    char *url;
};

struct notifier {
    sd_bus *bus;
    sd_bus_slot *on_action, *on_closed;
    struct live live[NOTIFY_MAX_LIVE];
    size_t next;                /* the slot the next notification takes (oldest first) */
    int markup;                 /* -1 unknown, else whether the server reads body markup */
};

static pid_t openers[NOTIFY_MAX_OPENERS];

static int open_url(const char *url);
static int reap(void);

static struct live *live_find(struct notifier *n, uint32_t id)
{
    for (size_t i = 0; i < NOTIFY_MAX_LIVE; i++)
        if (n->live[i].url && n->live[i].id == id)
            return &n->live[i];
    return NULL;
}

static void live_drop(struct live *l)
{
    free(l->url);
    l->url = NULL;
}

/*
 * Asks the desktop to open `url` (XDG Desktop Portal, OpenURI.OpenURI(s
 * parent_window, s uri, a{sv} options)), so that the browser starts as the
 * session's, not as a child of the agent: under the packaged unit's
 * hardening (MemoryDenyWriteExecute, RestrictNamespaces, NoNewPrivileges)
 * a browser started by the agent would inherit those and fail. 0, or -1
 * when there is no portal (then xdg-open it is).
 */
static int open_by_portal(struct notifier *n, const char *url)
{
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message *m = NULL, *reply = NULL;
    int r;
    if (!notify_url_allowed(url))
        return -1; /* open_url refuses it and says why */
    if ((r = sd.message_new_method_call(n->bus, &m, "org.freedesktop.portal.Desktop",
                                        "/org/freedesktop/portal/desktop", "org.freedesktop.portal.OpenURI",
                                        "OpenURI")) >= 0 &&
        (r = sd.message_append(m, "ssa{sv}", "", url, 0)) >= 0)
        r = sd.call(n->bus, m, NOTIFY_CALL_US, &error, &reply);
    if (r < 0)
        log_debug("no desktop portal (%s): xdg-open", error.message ? error.message : strerror(-r));
    sd.error_free(&error);
    sd.message_unref(m);
    sd.message_unref(reply);
    return r < 0 ? -1 : 0;
}

/* ActionInvoked(u id, s action_key): the user clicked our action. */
static int on_action(sd_bus_message *m, void *userdata, sd_bus_error *unused)
{
    struct notifier *n = userdata;
    struct live *l;
    const char *key;
    uint32_t id;
    (void)unused;
    if (sd.message_read(m, "us", &id, &key) < 0)
        return 0;
    if ((l = live_find(n, id)) && strcmp(key, "renew") == 0) {
        log_info("reminder %u: opening the renewal page", id);
        if (open_by_portal(n, l->url) != 0)
            open_url(l->url);
    }
    return 0;
}

/* NotificationClosed(u id, u reason): forget its URL. */
static int on_closed(sd_bus_message *m, void *userdata, sd_bus_error *unused)
{
    struct notifier *n = userdata;
    struct live *l;
    uint32_t id, reason;
    (void)unused;
    if (sd.message_read(m, "uu", &id, &reason) >= 0 && (l = live_find(n, id)))
        live_drop(l);
    return 0;
}

struct notifier *notify_open(char *err, size_t errlen)
{
    struct notifier *n = calloc(1, sizeof *n);
    int r;
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->markup = -1;
    if (load_sd_bus(err, errlen) != 0) {
        free(n);
        return NULL;
    }
    if ((r = sd.open_user(&n->bus)) < 0) {
        snprintf(err, errlen, "no D-Bus session bus (%s)", strerror(-r));
        goto fail;
    }
    /* The signals come from whoever owns the name; match on it so that no
     * other program's signals of the same name reach us. */
    if ((r = sd.match_signal(n->bus, &n->on_action, NOTIFY_DEST, NOTIFY_PATH, NOTIFY_IFACE, "ActionInvoked",
                             on_action, n)) < 0 ||
        (r = sd.match_signal(n->bus, &n->on_closed, NOTIFY_DEST, NOTIFY_PATH, NOTIFY_IFACE,
                             "NotificationClosed", on_closed, n)) < 0) {
        snprintf(err, errlen, "D-Bus session bus: %s", strerror(-r));
        goto fail;
    }
    return n;
fail:
    notify_close(n);
    return NULL;
}

void notify_close(struct notifier *n)
{
    if (!n)
        return;
    sd.slot_unref(n->on_action);
    sd.slot_unref(n->on_closed);
    sd.flush_close_unref(n->bus);
    for (size_t i = 0; i < NOTIFY_MAX_LIVE; i++)
        live_drop(&n->live[i]);
    free(n);
}

/* Whether the server reads markup in the body (GetCapabilities,
 * "body-markup"); asked once per connection. */
static int server_markup(struct notifier *n)
{
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message *reply = NULL;
    const char *cap;
    if (n->markup >= 0)
        return n->markup;
    n->markup = 0;
    if (sd.call_method(n->bus, NOTIFY_DEST, NOTIFY_PATH, NOTIFY_IFACE, "GetCapabilities", &error, &reply, "") >= 0 &&
        sd.message_enter_container(reply, 'a', "s") >= 0)
        while (sd.message_read(reply, "s", &cap) > 0)
            if (strcmp(cap, "body-markup") == 0)
                n->markup = 1;
    sd.error_free(&error);
    sd.message_unref(reply);
    return n->markup;
}

/* `in` with &, < and > as entities (the specification's body markup is a
 * subset of XML). malloc'd, NULL when out of memory. */
static char *escape_markup(const char *in)
{
    size_t len = 1;
    char *out, *o;
    for (const char *p = in; *p; p++)
        len += *p == '&' ? 5 : *p == '<' || *p == '>' ? 4 : 1;
    if (!(o = out = malloc(len)))
        return NULL;
    for (const char *p = in; *p; p++) {
        const char *entity = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : NULL;
        if (entity)
            o = stpcpy(o, entity);
        else
            *o++ = *p;
    }
    *o = '\0';
    return out;
}

int notify_show(struct notifier *n, const char *summary, const char *body, const char *url, char *err,
                size_t errlen)
{
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message *m = NULL, *reply = NULL;
    char *text = server_markup(n) ? escape_markup(body) : strdup(body), *url_copy = NULL;
    uint32_t id = 0;
    int r, rc = -1;

    if (!text || (url && !(url_copy = strdup(url)))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* Notify(s app_name, u replaces_id, s app_icon, s summary, s body,
     *        as actions, a{sv} hints, i expire_timeout) -> u id
     * No "desktop-entry" hint: the agent installs no .desktop file for it
     * to name. */
    if ((r = sd.message_new_method_call(n->bus, &m, NOTIFY_DEST, NOTIFY_PATH, NOTIFY_IFACE, "Notify")) < 0 ||
        (r = sd.message_append(m, "susss", "ukey-agent", (uint32_t)0, "dialog-warning", summary, text)) < 0 ||
        (r = url ? sd.message_append(m, "as", 2, "renew", "去续期 / Renew")
                 : sd.message_append(m, "as", 0)) < 0 ||
        (r = sd.message_append(m, "a{sv}", 1, "urgency", "y", (uint8_t)1)) < 0 ||
        (r = sd.message_append(m, "i", (int32_t)-1)) < 0) {
        snprintf(err, errlen, "cannot build the notification: %s", strerror(-r));
        goto out;
    }
    if ((r = sd.call(n->bus, m, NOTIFY_CALL_US, &error, &reply)) < 0) {
        snprintf(err, errlen, "no notification server answered: %s",
                 error.message ? error.message : strerror(-r));
        goto out;
    }
    if (sd.message_read(reply, "u", &id) < 0) {
        snprintf(err, errlen, "the notification server's answer is not an id");
        goto out;
    }
    if (url_copy) {
        struct live *l = &n->live[n->next];
        n->next = (n->next + 1) % NOTIFY_MAX_LIVE;
        live_drop(l);
        l->id = id;
        l->url = url_copy;
        url_copy = NULL;
    }
    rc = 0;
out:
    free(text);
    free(url_copy);
    sd.error_free(&error);
    sd.message_unref(m);
    sd.message_unref(reply);
    return rc;
}

/* What to poll for the bus: its descriptor, events and the longest wait
 * in milliseconds (-1: none). */
static int bus_fd(struct notifier *n, short *events, int *timeout_ms)
{
    uint64_t usec = UINT64_MAX;
    int ev = sd.get_events(n->bus);
    *events = (short)(ev > 0 ? ev : POLLIN);
    *timeout_ms = -1;
    if (sd.get_timeout(n->bus, &usec) >= 0 && usec != UINT64_MAX) {
        /* An absolute CLOCK_MONOTONIC time; 0 means now. */
        struct timespec ts;
        uint64_t now;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
        *timeout_ms = usec <= now ? 0 : (usec - now) / 1000u > 60000u ? 60000 : (int)((usec - now) / 1000u) + 1;
    }
    return sd.get_fd(n->bus);
}

int notify_process(struct notifier *n)
{
    int r;
    while ((r = sd.process(n->bus, NULL)) > 0)
        ;
    if (r < 0)
        log_info("reminders: the D-Bus session bus went away (%s)", strerror(-r));
    return r < 0 ? -1 : 0;
}

static int open_url(const char *url)
{
    char *argv[] = {"xdg-open", (char *)url, NULL};
    pid_t pid;
    int r;
    size_t slot;
    if (!notify_url_allowed(url)) {
        log_warn("not opening a renewal link that is not https:// or loopback http://");
        return -1;
    }
    reap();
    for (slot = 0; slot < NOTIFY_MAX_OPENERS && openers[slot] > 0; slot++)
        ;
    if (slot == NOTIFY_MAX_OPENERS) {
        log_warn("not opening the renewal page: %d earlier xdg-open runs have not finished", NOTIFY_MAX_OPENERS);
        return -1;
    }
    if ((r = posix_spawnp(&pid, "xdg-open", NULL, NULL, argv, environ)) != 0) {
        log_warn("cannot run xdg-open: %s", strerror(r));
        return -1;
    }
    openers[slot] = pid;
    return 0;
}

static int reap(void)
{
    int running = 0;
    for (size_t i = 0; i < NOTIFY_MAX_OPENERS; i++) {
        int status;
        if (openers[i] > 0 && waitpid(openers[i], &status, WNOHANG) != 0)
            openers[i] = 0;
        running += openers[i] > 0;
    }
    return running;
}

/* Wake-ups: a non-blocking pipe, polled with the bus. */
struct notify_wake {
    int fd[2];
};

struct notify_wake *notify_wake_create(void)
{
    struct notify_wake *w = malloc(sizeof *w);
    if (w && pipe2(w->fd, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(w);
        w = NULL;
    }
    return w;
}

void notify_wake_post(struct notify_wake *w, unsigned what)
{
    unsigned char b = (unsigned char)what;
    if (write(w->fd[1], &b, 1) < 0) {
        /* EAGAIN: the pipe is full of wake-ups, which wake the waiter as well */
    }
}

int notify_wait(struct notify_wake *w, struct notifier *n, int timeout_ms)
{
    struct pollfd pf[2] = {{.fd = w->fd[0], .events = POLLIN}};
    nfds_t nfds = 1;
    int bus_timeout, woke = 0;
    unsigned char buf[64];
    ssize_t got;
    if (n) {
        pf[1].fd = bus_fd(n, &pf[1].events, &bus_timeout);
        nfds = 2;
        if (bus_timeout >= 0 && bus_timeout < timeout_ms)
            timeout_ms = bus_timeout;
    }
    if (reap() > 0 && timeout_ms > 1000)
        timeout_ms = 1000; /* an xdg-open still running: reap it soon */
    if (poll(pf, nfds, timeout_ms) < 0 && errno != EINTR)
        return -1;
    while ((got = read(w->fd[0], buf, sizeof buf)) > 0)
        for (ssize_t k = 0; k < got; k++)
            woke |= buf[k];
    return woke;
}

void notify_wake_free(struct notify_wake *w)
{
    if (!w)
        return;
    close(w->fd[0]);
    close(w->fd[1]);
    free(w);
}
