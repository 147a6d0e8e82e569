/*
 * Renewal reminders (issue 18): when a token is inserted, and once a day
 * while it stays, every certificate on it that expires within its window
 * (or has expired) raises one desktop notification (notify.h) with the
 * holder, the days left and the issuer, and a "renew" action when a
 * renewal page is known.
 *
 * No spam: what was shown is remembered per certificate (SHA-256 of its
 * DER, hex) per local day in <state_dir>/reminders.json,
 *   {"version": 1, "shown": {"<sha256 hex>": "2026-12-06", ...}}
 * written atomically with mode 0600; at most one notification per
 * certificate per day, across restarts. Entries older than
 * REMINDERS_KEEP_DAYS (or dated in the future: the clock went back) are
 * dropped; a file that does not read as that shape is logged once and
 * started afresh. A notification that could not be shown is not
 * remembered, so it is tried again at the next insertion or day.
 *
 * The scheduler is one thread of its own. It learns of insertions from
 * the event hub (api/events.h, events_observe) and otherwise wakes hourly
 * (or just after local midnight) to see whether the local day changed,
 * then looks at the tokens present again. Without
 * a session bus or a notification server it logs one line and the agent
 * runs on; it tries to connect again at the next check.
 */
#ifndef UKEY_NOTIFY_REMINDERS_H
#define UKEY_NOTIFY_REMINDERS_H

#include <jansson.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

#define REMINDERS_KEEP_DAYS 60
#define REMINDERS_FILE "reminders.json"

struct reminders_options {
    const char *state_dir;      /* where reminders.json lives (copied) */
};

/* Starts the scheduler (a first check at once, for tokens already
 * present). 0, or -1 (logged) when its thread cannot start. */
int reminders_start(const struct reminders_options *opt);

/* Stops and joins the scheduler thread; closes its bus connection. Safe
 * to call when it was not started. */
void reminders_stop(void);

/* reminders.json, for the scheduler and its tests. `today` is a local day
 * number (reminders_day). Returns the "shown" object without stale
 * entries (a new empty one when the file is missing or bad: logged), or
 * NULL when out of memory. */
json_t *reminders_load(const char *path, long today);

/* Writes {"version": 1, "shown": shown} to `path` atomically, 0600. 0 or -1. */
int reminders_save(const char *path, json_t *shown);

/* The local calendar day of `t` as a day number (days since 1970-01-01
 * in the local calendar) and, when `text` is not NULL, as "YYYY-MM-DD"
 * (11 bytes). */
long reminders_day(time_t t, char text[11]);

#endif
