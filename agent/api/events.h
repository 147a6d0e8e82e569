/*
 * GET /api/v1/events: Server-Sent Events for readers and tokens coming and
 * going. The hub keeps one small queue per subscriber; the HTTP layer reads
 * it and parks the connection (MHD suspend) while the queue is empty, so an
 * idle subscriber costs no thread and no wake-ups.
 *
 *   event: token-inserted
 *   data: {"reader": "…", "token": "piv-…"}
 *
 * Types: reader-added, reader-removed, token-inserted, token-removed; a
 * comment line (": ping") every EVENTS_PING_S seconds keeps proxies and the
 * idle timeouts content and finds dead clients. The pings come from a thread
 * of the hub's own, started with the first stream, that sleeps without a
 * timeout while nobody listens: an idle agent has no wake-ups.
 */
#ifndef UKEY_API_EVENTS_H
#define UKEY_API_EVENTS_H

#include <stddef.h>
#include <sys/types.h>

#define EVENTS_PING_S 15

struct event_sub;

/* A new subscriber; `park`/`wake` are called with the subscriber's lock held
 * when it must wait for data / when data arrived for a parked one. NULL with
 * errno EBUSY when there are too many subscribers (the closed ones are then
 * pinged out), ENOMEM when there is no memory. */
struct event_sub *events_subscribe(void (*park)(void *ctx), void (*wake)(void *ctx), void *ctx);

/* Copies queued event text into buf. Returns the byte count; 0 after
 * calling park() when there is nothing yet; -1 when the hub is shutting
 * down (end of stream). */
ssize_t events_read(struct event_sub *sub, char *buf, size_t max);

void events_unsubscribe(struct event_sub *sub);

/* Queues an event for every subscriber. `data_json` is a JSON text. */
void events_publish(const char *type, const char *data_json);

/* One in-process observer of the events (the renewal reminders): fn(type,
 * data_json, ctx) runs after the subscribers were queued, on the monitor
 * thread that published, with no lock held; it must return quickly. NULL
 * removes it; once events_observe returns, the old observer is not running
 * and will not be called again. */
void events_observe(void (*fn)(const char *type, const char *data_json, void *ctx), void *ctx);

/* Starts the PC/SC, PKCS#11 and SKF monitors that feed the hub; 0 on
 * success. */
int events_start(void);

/* Stops the monitor, ends every stream and wakes parked connections, so the
 * HTTP engine can close them. */
void events_shutdown(void);

#endif
