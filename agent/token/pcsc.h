/*
 * The PC/SC layer (pcsc-lite on Linux/macOS, WinSCard on Windows). The only
 * file that includes <winscard.h>; SCARD_* codes are translated here, once.
 *
 * Every call establishes its own PC/SC context and releases it, so a pcscd
 * restart (SCARD_E_NO_SERVICE) heals by itself at the next call, and
 * threads never share a context. Each card operation runs inside
 * SCardBeginTransaction, which also serialises requests from this and
 * other processes for the same card.
 */
#ifndef UKEY_TOKEN_PCSC_H
#define UKEY_TOKEN_PCSC_H

#include "util/error.h"

#include <stddef.h>

#define PCSC_MAX_READERS 16
#define PCSC_MAX_ATR 33

enum reader_state {
    READER_EMPTY,       /* no card */
    READER_PRESENT,     /* a card, powered and answering */
    READER_MUTE,        /* a card that does not answer (bad contact, dead card) */
    READER_IN_USE,      /* another program holds the card exclusively */
};

struct reader_info {
    char name[128];
    enum reader_state state;
    unsigned char atr[PCSC_MAX_ATR];
    size_t atr_len;
    unsigned events;    /* pcsc-lite's per-reader event counter: changes on insert/remove */
};

struct pcsc_probe {
    int available;          /* the PC/SC service answered */
    int readers;            /* readers attached */
    int cards;              /* readers with a card present */
    const char *error_code; /* e.g. "SCARD_E_NO_SERVICE" when not available */
    const char *detail;     /* English explanation of error_code */
};

/* Asks the PC/SC service for readers and cards, without blocking on cards. */
void pcsc_probe(struct pcsc_probe *out);

/*
 * The same from what the hotplug monitor knows, without asking PC/SC: it
 * learns every reader and card change as it happens (SCardGetStatusChange).
 * While it has no live context (pcscd not running, gone, or just back and
 * not yet looked at, or the monitor not started) this asks PC/SC like
 * pcsc_probe, and a service found back makes the monitor look at once.
 */
void pcsc_status(struct pcsc_probe *out);

/*
 * Lists up to PCSC_MAX_READERS readers with their state. Returns UKEY_OK
 * (with *n possibly 0) or UKEY_ERR_PCSC_UNAVAILABLE; `why` (may be NULL)
 * receives the SCARD_* name of the failure.
 */
ukey_err pcsc_list(struct reader_info *out, size_t *n, const char **why);

/* A card connected in a transaction, for the length of one operation. */
struct card;

enum card_end { CARD_LEAVE, CARD_RESET };

/*
 * Connects (shared) to the card in `reader`, begins a transaction and runs
 * fn(card, arg). Ends the transaction with SCARD_RESET_CARD when `end` is
 * CARD_RESET (after any operation that verified a PIN: nobody may ride on
 * the verified state, invariant 5), else leaves the card as it is.
 * Returns fn's result, or TOKEN_REMOVED, TOKEN_BUSY, TOKEN_NOT_FOUND,
 * PCSC_UNAVAILABLE, CARD_ERROR.
 */
ukey_err pcsc_with_card(const char *reader, enum card_end end,
                        ukey_err (*fn)(struct card *card, void *arg), void *arg);

/*
 * Sends one short APDU and receives the raw response (data + SW1 SW2) into
 * `resp` (capacity *resp_len, at least 258), setting *resp_len. Returns
 * UKEY_OK or TOKEN_REMOVED / CARD_ERROR.
 */
ukey_err card_transmit(struct card *card, const unsigned char *cmd, size_t cmd_len,
                       unsigned char *resp, size_t *resp_len);

/*
 * The card's reader (its name) as PC/SC sees it now: its event counter (pcsc-lite and
 * WinSCard count every insertion and removal there) and ATR. UKEY_OK, or
 * TOKEN_NOT_SUPPORTED for a card with no PC/SC side, or a PC/SC error.
 * No card command.
 */
ukey_err card_insertion(struct card *card, const char **reader, unsigned *events, unsigned char atr[PCSC_MAX_ATR],
                        size_t *atr_len);

struct pinpad_params;

/*
 * Whether the card's reader takes PINs on its own keypad (PC/SC Part 10
 * FEATURE_VERIFY_PIN_DIRECT, asked once per reader (by name) with
 * CM_IOCTL_GET_FEATURE_REQUEST). Sets *has_pad to 1 or 0 and returns
 * UKEY_OK; a reader that does not answer the request, or answers a
 * malformed list, has no pad. TOKEN_REMOVED / CARD_ERROR only when the card
 * went away or was reset meanwhile. A card with no PC/SC side has no pad.
 */
ukey_err card_pin_pad(struct card *card, int *has_pad);

/*
 * Has the reader run the PIN command `p` (pinpad.h): the user types the PIN
 * on the keypad, the reader completes the APDU and sends it. Sets *sw to the
 * card's SW1 SW2 and returns UKEY_OK; or PIN_PAD_TIMEOUT / PIN_PAD_CANCELLED
 * / PIN_FORMAT / CARD_ERROR for what the reader itself answered, or a
 * transport error. Blocks while the user types (up to p->timeout_s).
 * PIN_REQUIRED when the reader has no pad (the PIN must come with the
 * request).
 */
ukey_err card_verify_pin_pad(struct card *card, const struct pinpad_params *p, unsigned *sw);

enum pcsc_event { PCSC_READER_ADDED, PCSC_READER_REMOVED, PCSC_CARD_INSERTED, PCSC_CARD_REMOVED };

/*
 * Starts the hotplug monitor thread: it waits in SCardGetStatusChange (with
 * the PnP pseudo-reader, so there are no wake-ups while nothing changes)
 * and calls cb(event, reader, arg) from that thread. It survives pcscd
 * restarts. Returns 0, or -1 if the thread cannot start.
 */
int pcsc_monitor_start(void (*cb)(enum pcsc_event ev, const char *reader, void *arg), void *arg);
/* Stops and joins the monitor thread (no-op if not started). */
void pcsc_monitor_stop(void);

#endif
