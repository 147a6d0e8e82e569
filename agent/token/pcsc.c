/* PC/SC access (pcsc-lite / WinSCard); see pcsc.h. */
#include "token/pcsc.h"

#include "token/card.h"
#include "token/pinpad.h"

#include "util/clock.h"
#include "util/join.h"
#include "util/log.h"
#include "util/thread.h"

#ifdef _WIN32
#include <winscard.h>
/* PC/SC Part 10's request of a reader's features: Windows' own ioctl code
 * (winsmcrd.h: 0x313520); pcsc-lite's is 0x42000D48 (reader.h). */
#define CM_IOCTL_GET_FEATURE_REQUEST SCARD_CTL_CODE(3400)
/* SCardStatus's state: an ordered value on Windows, bits in pcsc-lite. */
#define CARD_ABSENT(state) ((state) <= SCARD_ABSENT)
#else
#include <PCSC/reader.h>
#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>
#define CARD_ABSENT(state) (!((state) & SCARD_PRESENT))
#endif

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pcsc_card {
    SCARDCONTEXT ctx;
    SCARDHANDLE handle;
    DWORD protocol;
    int secret_sent;        /* a PIN, PUK or new PIN went to the card: never run twice */
    int reset_seen;         /* a transmit found the card reset by someone else */
    const char *reader;
    int features_read;      /* the reader's Part 10 features are in `features` */
    struct pinpad_features features;
};

struct scard_err {
    LONG code;
    const char *name;
    ukey_err err;
    const char *detail;
};

/* The one table of PC/SC codes this layer reports. */
static const struct scard_err scard_errors[] = {
    {(LONG)SCARD_E_NO_SERVICE, "SCARD_E_NO_SERVICE", UKEY_ERR_PCSC_UNAVAILABLE,
     "the smart-card service (pcscd; Windows: \"Smart Card\", which stops while no reader is attached) is not "
     "running"},
    {(LONG)SCARD_E_SERVICE_STOPPED, "SCARD_E_SERVICE_STOPPED", UKEY_ERR_PCSC_UNAVAILABLE,
     "the smart-card service stopped"},
    {(LONG)SCARD_F_COMM_ERROR, "SCARD_F_COMM_ERROR", UKEY_ERR_PCSC_UNAVAILABLE,
     "the connection to the smart-card service broke (pcscd ended in the middle of an answer)"},
    {(LONG)SCARD_E_NO_READERS_AVAILABLE, "SCARD_E_NO_READERS_AVAILABLE", UKEY_ERR_TOKEN_NOT_FOUND,
     "no card reader is connected"},
    {(LONG)SCARD_E_UNKNOWN_READER, "SCARD_E_UNKNOWN_READER", UKEY_ERR_TOKEN_NOT_FOUND,
     "the reader is gone"},
    {(LONG)SCARD_E_READER_UNAVAILABLE, "SCARD_E_READER_UNAVAILABLE", UKEY_ERR_TOKEN_NOT_FOUND,
     "the reader is gone"},
    {(LONG)SCARD_E_NO_SMARTCARD, "SCARD_E_NO_SMARTCARD", UKEY_ERR_TOKEN_REMOVED,
     "no card in the reader"},
    {(LONG)SCARD_W_REMOVED_CARD, "SCARD_W_REMOVED_CARD", UKEY_ERR_TOKEN_REMOVED,
     "the card was removed"},
    {(LONG)SCARD_W_RESET_CARD, "SCARD_W_RESET_CARD", UKEY_ERR_CARD_ERROR,
     "the card was reset by another program during the operation"},
    {(LONG)SCARD_W_UNRESPONSIVE_CARD, "SCARD_W_UNRESPONSIVE_CARD", UKEY_ERR_CARD_ERROR,
     "the card does not answer (mute)"},
    {(LONG)SCARD_W_UNPOWERED_CARD, "SCARD_W_UNPOWERED_CARD", UKEY_ERR_CARD_ERROR,
     "the card is not powered"},
    {(LONG)SCARD_E_SHARING_VIOLATION, "SCARD_E_SHARING_VIOLATION", UKEY_ERR_TOKEN_BUSY,
     "another program holds the card exclusively"},
    {(LONG)SCARD_E_NOT_TRANSACTED, "SCARD_E_NOT_TRANSACTED", UKEY_ERR_CARD_ERROR,
     "the reader could not exchange data with the card"},
    {(LONG)SCARD_E_TIMEOUT, "SCARD_E_TIMEOUT", UKEY_ERR_CARD_ERROR,
     "the smart-card service did not answer in time"},
    {(LONG)SCARD_E_NO_MEMORY, "SCARD_E_NO_MEMORY", UKEY_ERR_OUT_OF_MEMORY, "out of memory"},
    {(LONG)SCARD_E_PROTO_MISMATCH, "SCARD_E_PROTO_MISMATCH", UKEY_ERR_CARD_ERROR,
     "the card was reset to another protocol by another program"},
};

static const struct scard_err *scard_lookup(LONG rv)
{
    static const struct scard_err unknown = {0, "SCARD_E_UNKNOWN", UKEY_ERR_CARD_ERROR,
                                             "unexpected PC/SC error"};
    for (size_t i = 0; i < sizeof scard_errors / sizeof scard_errors[0]; i++)
        if (scard_errors[i].code == rv)
            return &scard_errors[i];
    return &unknown;
}

/* Translates a failed SCard* call, logging it once at debug level. */
static ukey_err scard_fail(const char *call, LONG rv)
{
    const struct scard_err *e = scard_lookup(rv);
    log_debug("pcsc: %s: %s (0x%lx)", call, e->name, (unsigned long)rv);
    return e->err;
}

/* Windows 8 and later stop the smart-card service when the last reader
 * goes and start it again for the next one; pcscd may be restarted, or
 * crash. A context made just before that answers its first call with one
 * of these (pcsc-lite: SCARD_F_COMM_ERROR when pcscd's socket closes in the
 * middle of its answer): the call is made once more on a new context. (The
 * monitor makes a new context whenever its own fails.) */
static int service_went_away(LONG rv)
{
    return rv == (LONG)SCARD_E_SERVICE_STOPPED || rv == (LONG)SCARD_E_NO_SERVICE || rv == (LONG)SCARD_F_COMM_ERROR;
}

/* Fills `names` (a multi-string) for the readers of ctx; 0 readers is fine.
 * The list is asked for its length, then for itself: a reader that comes
 * in between (pcscd loading its drivers one by one after a start) makes
 * the second call SCARD_E_INSUFFICIENT_BUFFER, and the two are made again. */
static LONG list_names(SCARDCONTEXT ctx, char **names)
{
    LONG rv = SCARD_S_SUCCESS;
    *names = NULL;
    for (int tries = 0; tries < 4; tries++) {
        DWORD len = 0;
        free(*names);
        *names = NULL;
        rv = SCardListReaders(ctx, NULL, NULL, &len);
        if (rv == (LONG)SCARD_E_NO_READERS_AVAILABLE)
            return SCARD_S_SUCCESS;
        if (rv != SCARD_S_SUCCESS)
            return rv;
        if (!(*names = calloc(1, len + 1)))
            return (LONG)SCARD_E_NO_MEMORY;
        rv = SCardListReaders(ctx, NULL, *names, &len);
        if (rv == (LONG)SCARD_E_NO_READERS_AVAILABLE) {
            (*names)[0] = '\0';
            return SCARD_S_SUCCESS;
        }
        if (rv != (LONG)SCARD_E_INSUFFICIENT_BUFFER)
            return rv;
    }
    return rv;
}

static enum reader_state state_of(DWORD ev)
{
    if (!(ev & SCARD_STATE_PRESENT))
        return READER_EMPTY;
    if (ev & SCARD_STATE_MUTE)
        return READER_MUTE;
    if (ev & SCARD_STATE_EXCLUSIVE)
        return READER_IN_USE;
    return READER_PRESENT;
}

ukey_err pcsc_list(struct reader_info *out, size_t *n, const char **why)
{
    SCARD_READERSTATE states[PCSC_MAX_READERS];
    SCARDCONTEXT ctx;
    char *names = NULL;
    ukey_err e = UKEY_OK;
    LONG rv;

    *n = 0;
    if (why)
        *why = NULL;
    for (int fresh = 0;; fresh++) {
        rv = SCardEstablishContext(SCARD_SCOPE_USER, NULL, NULL, &ctx);
        if (rv != SCARD_S_SUCCESS) {
            if (why)
                *why = scard_lookup(rv)->name;
            return UKEY_ERR_PCSC_UNAVAILABLE;
        }
        rv = list_names(ctx, &names);
        if (!service_went_away(rv) || fresh)
            break;
        free(names);
        names = NULL;
        SCardReleaseContext(ctx);
    }
    if (rv != SCARD_S_SUCCESS) {
        if (why)
            *why = scard_lookup(rv)->name;
        e = scard_fail("SCardListReaders", rv);
        goto out;
    }
    for (char *r = names; r && *r && *n < PCSC_MAX_READERS; r += strlen(r) + 1) {
        memset(&states[*n], 0, sizeof states[*n]);
        states[*n].szReader = r;
        states[*n].dwCurrentState = SCARD_STATE_UNAWARE;
        (*n)++;
    }
    if (*n > 0 && (rv = SCardGetStatusChange(ctx, 0, states, (DWORD)*n)) != SCARD_S_SUCCESS) {
        e = scard_fail("SCardGetStatusChange", rv);
        *n = 0;
        goto out;
    }
    for (size_t i = 0; i < *n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        snprintf(out[i].name, sizeof out[i].name, "%s", states[i].szReader);
        out[i].state = state_of(states[i].dwEventState);
        out[i].events = (unsigned)(states[i].dwEventState >> 16);
        out[i].atr_len = states[i].cbAtr <= PCSC_MAX_ATR ? states[i].cbAtr : 0;
        memcpy(out[i].atr, states[i].rgbAtr, out[i].atr_len);
    }
out:
    free(names);
    SCardReleaseContext(ctx);
    return e;
}

void pcsc_probe(struct pcsc_probe *out)
{
    struct reader_info readers[PCSC_MAX_READERS];
    size_t n = 0;
    const char *why = NULL;
    ukey_err e = pcsc_list(readers, &n, &why);

    memset(out, 0, sizeof *out);
    out->available = e != UKEY_ERR_PCSC_UNAVAILABLE;
    if (!out->available) {
        const struct scard_err *se = &scard_errors[0];
        for (size_t i = 0; i < sizeof scard_errors / sizeof scard_errors[0]; i++)
            if (why && strcmp(scard_errors[i].name, why) == 0)
                se = &scard_errors[i];
        out->error_code = se->name;
        out->detail = se->detail;
        return;
    }
    out->readers = (int)n;
    for (size_t i = 0; i < n; i++)
        out->cards += readers[i].state != READER_EMPTY;
}

/* How often an operation starts over when another handle reset the card
 * before its first command. */
#define PCSC_RESET_RETRIES 16
#define PCSC_WAIT_S 5
/* Another program holding the card exclusively often lets go within
 * moments (a middleware's own short exclusive read): ask again this often,
 * this many times, before answering TOKEN_BUSY. */
#define PCSC_SHARING_RETRY_MS 100
#define PCSC_SHARING_RETRIES 20

/* The agent's own card operations take turns here, each waiting at most
 * PCSC_WAIT_S: a slow or stuck card makes the next requests hear TOKEN_BUSY
 * at once instead of queueing inside PC/SC for as long as it takes. */
static pthread_mutex_t card_turn = PTHREAD_MUTEX_INITIALIZER;

static ukey_err with_card(const char *reader, enum card_end end, ukey_err (*fn)(struct card *card, void *arg),
                          void *arg);

ukey_err pcsc_with_card(const char *reader, enum card_end end,
                        ukey_err (*fn)(struct card *card, void *arg), void *arg)
{
    ukey_err e;
    if (thread_mutex_lock_for(&card_turn, PCSC_WAIT_S * 1000LL) != 0) {
        log_debug("pcsc: the card stayed busy for %d s", PCSC_WAIT_S);
        return UKEY_ERR_TOKEN_BUSY;
    }
    e = with_card(reader, end, fn, arg);
    pthread_mutex_unlock(&card_turn);
    return e;
}

/* Connects to the card in `reader` (shared), asking again for a moment
 * while another program holds it exclusively. */
static LONG connect_shared(SCARDCONTEXT ctx, const char *reader, struct pcsc_card *pc)
{
    LONG rv;
    for (int tries = 0;; tries++) {
        rv = SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &pc->handle,
                          &pc->protocol);
        if (rv != (LONG)SCARD_E_SHARING_VIOLATION || tries == PCSC_SHARING_RETRIES)
            return rv;
        if (tries == 0)
            log_debug("pcsc: another program holds the card exclusively: asking again for a moment");
        nanosleep(&(struct timespec){0, PCSC_SHARING_RETRY_MS * 1000000L}, NULL);
    }
}

static ukey_err with_card(const char *reader, enum card_end end, ukey_err (*fn)(struct card *card, void *arg),
                          void *arg)
{
    SCARDCONTEXT ctx;
    struct pcsc_card pc = {.reader = reader};
    struct card card = {.pcsc = &pc};
    ukey_err e;
    LONG rv;

    for (int fresh = 0;; fresh++) {
        rv = SCardEstablishContext(SCARD_SCOPE_USER, NULL, NULL, &ctx);
        if (rv != SCARD_S_SUCCESS)
            return scard_fail("SCardEstablishContext", rv);
        pc.ctx = ctx;
        rv = connect_shared(ctx, reader, &pc);
        if (!service_went_away(rv) || fresh)
            break;
        SCardReleaseContext(ctx);
    }
    if (rv != SCARD_S_SUCCESS) {
        e = scard_fail("SCardConnect", rv);
        goto out_ctx;
    }
    for (int attempt = 0;; attempt++) {
        rv = SCardBeginTransaction(pc.handle);
        if (rv == (LONG)SCARD_W_RESET_CARD && attempt < PCSC_RESET_RETRIES) {
            /* Someone reset the card since we connected (under load, again
             * and again): reconnect and queue for the card once more; every
             * operation selects its application again anyway. */
            rv = SCardReconnect(pc.handle, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                                SCARD_LEAVE_CARD, &pc.protocol);
            if (rv == SCARD_S_SUCCESS)
                continue;
        }
        if (rv != SCARD_S_SUCCESS) {
            e = scard_fail("SCardBeginTransaction", rv);
            goto out_card;
        }
        e = fn(&card, arg);
        if (e == UKEY_OK || !pc.reset_seen || pc.secret_sent || attempt == PCSC_RESET_RETRIES)
            break;
        /* Another handle's reset got in the way (a PIN operation that just
         * ended does that, and under load several may) before any PIN went
         * to the card: leave the transaction, reconnect and run the
         * operation again from its start. */
        SCardEndTransaction(pc.handle, SCARD_LEAVE_CARD);
        rv = SCardReconnect(pc.handle, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                            SCARD_LEAVE_CARD, &pc.protocol);
        pc.reset_seen = 0;
        if (rv != SCARD_S_SUCCESS) {
            e = scard_fail("SCardReconnect", rv);
            goto out_card;
        }
    }
    /* Invariant 5: after a PIN operation the card is reset, whatever happened,
     * so that no other program or origin finds it verified. */
    rv = SCardEndTransaction(pc.handle, end == CARD_RESET ? SCARD_RESET_CARD : SCARD_LEAVE_CARD);
    if (rv != SCARD_S_SUCCESS && rv != (LONG)SCARD_W_REMOVED_CARD && rv != (LONG)SCARD_E_NO_SMARTCARD)
        scard_fail("SCardEndTransaction", rv);
out_card:
    SCardDisconnect(pc.handle, end == CARD_RESET ? SCARD_RESET_CARD : SCARD_LEAVE_CARD);
out_ctx:
    SCardReleaseContext(ctx);
    return e;
}

/* A failed exchange: when the card is no longer in the reader, say so.
 * Readers often report a card pulled mid-command as a transfer error or an
 * empty answer before their presence detection notices, so look for up to
 * a second. Otherwise keep `e`. */
static ukey_err exchange_failed(struct card *card, ukey_err e)
{
    if (e != UKEY_ERR_CARD_ERROR)
        return e;
    for (int i = 0; i < 10; i++) {
        DWORD state = 0, proto, atr_len = PCSC_MAX_ATR, name_len = 0;
        BYTE atr[PCSC_MAX_ATR];
        LONG st = SCardStatus(card->pcsc->handle, NULL, &name_len, &state, &proto, atr, &atr_len);
        if (st == (LONG)SCARD_W_REMOVED_CARD || st == (LONG)SCARD_E_NO_SMARTCARD ||
            (st == SCARD_S_SUCCESS && CARD_ABSENT(state)))
            return UKEY_ERR_TOKEN_REMOVED;
        if (st != SCARD_S_SUCCESS)
            break;
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    }
    return e;
}

/* A failed SCardTransmit or SCardControl. pcsc-lite answers a command right
 * after another handle's reset with either of the first two (the reset may
 * renegotiate the protocol): start over (pcsc_with_card). */
static ukey_err exchange_error(struct card *card, const char *what, LONG rv)
{
    card->pcsc->reset_seen |= rv == (LONG)SCARD_W_RESET_CARD || rv == (LONG)SCARD_E_PROTO_MISMATCH;
    return rv == (LONG)SCARD_W_RESET_CARD ? scard_fail(what, rv) : exchange_failed(card, scard_fail(what, rv));
}

ukey_err card_transmit(struct card *card, const unsigned char *cmd, size_t cmd_len,
                       unsigned char *resp, size_t *resp_len)
{
    struct pcsc_card *pc = card->pcsc;
    DWORD len = (DWORD)*resp_len;
    const SCARD_IO_REQUEST *pci;
    LONG rv;
    if (!pc)
        return UKEY_ERR_TOKEN_NOT_SUPPORTED; /* not a PC/SC card: APDU drivers decline it */
    pci = pc->protocol == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    /* ISO 7816-4 VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER with
     * data: once sent, a failure must not make the operation run again. */
    if (cmd_len > 5 && (cmd[1] == 0x20 || cmd[1] == 0x24 || cmd[1] == 0x2C))
        pc->secret_sent = 1;
    rv = SCardTransmit(pc->handle, pci, cmd, (DWORD)cmd_len, NULL, resp, &len);
    if (rv != SCARD_S_SUCCESS)
        return exchange_error(card, "SCardTransmit", rv);
    if (len < 2) {
        log_debug("pcsc: SCardTransmit: answer of %lu bytes", (unsigned long)len);
        return exchange_failed(card, UKEY_ERR_CARD_ERROR);
    }
    *resp_len = len;
    return UKEY_OK;
}

ukey_err card_insertion(struct card *card, const char **reader, unsigned *events, unsigned char atr[PCSC_MAX_ATR],
                        size_t *atr_len)
{
    SCARD_READERSTATE rs;
    LONG rv;
    if (!card->pcsc)
        return UKEY_ERR_TOKEN_NOT_SUPPORTED;
    memset(&rs, 0, sizeof rs);
    rs.szReader = card->pcsc->reader;
    rs.dwCurrentState = SCARD_STATE_UNAWARE;
    if ((rv = SCardGetStatusChange(card->pcsc->ctx, 0, &rs, 1)) != SCARD_S_SUCCESS)
        return scard_fail("SCardGetStatusChange", rv);
    *reader = card->pcsc->reader;
    *events = (unsigned)(rs.dwEventState >> 16);
    *atr_len = rs.cbAtr <= PCSC_MAX_ATR ? rs.cbAtr : 0;
    memcpy(atr, rs.rgbAtr, *atr_len);
    return UKEY_OK;
}

/* Pin-pad readers (PC/SC Part 10) ------------------------------------------ */

/* The readers' Part 10 features, asked once per reader, not once per
 * operation: what a reader can do does not change between cards. Used
 * under card_turn only. */
static struct {
    char reader[128];
    struct pinpad_features features;
} reader_features[PCSC_MAX_READERS];
static size_t n_reader_features;

ukey_err card_pin_pad(struct card *card, int *has_pad)
{
    struct pcsc_card *pc = card->pcsc;
    unsigned char buf[256];
    DWORD len = 0;
    LONG rv;

    *has_pad = 0;
    if (!pc)
        return UKEY_OK;
    for (size_t i = 0; i < n_reader_features && !pc->features_read; i++) {
        if (strcmp(reader_features[i].reader, pc->reader) == 0) {
            pc->features = reader_features[i].features;
            pc->features_read = 1;
        }
    }
    if (!pc->features_read) {
        rv = SCardControl(pc->handle, CM_IOCTL_GET_FEATURE_REQUEST, NULL, 0, buf, sizeof buf, &len);
        if (rv == (LONG)SCARD_W_RESET_CARD || rv == (LONG)SCARD_E_PROTO_MISMATCH ||
            rv == (LONG)SCARD_W_REMOVED_CARD || rv == (LONG)SCARD_E_NO_SMARTCARD || service_went_away(rv) ||
            rv == (LONG)SCARD_E_READER_UNAVAILABLE)
            return exchange_error(card, "SCardControl(GET_FEATURE_REQUEST)", rv);
        if (rv != SCARD_S_SUCCESS) {
            /* Most readers without a keypad say so (e.g. SCARD_E_UNSUPPORTED_FEATURE). */
            log_debug("pcsc: the reader lists no features: %s (0x%lx)", scard_lookup(rv)->name,
                      (unsigned long)rv);
        } else if (pinpad_parse_features(buf, len <= sizeof buf ? len : 0, &pc->features) != 0) {
            log_warn("pcsc: the reader answered a malformed feature list (%lu bytes): no PIN pad",
                     (unsigned long)len);
        }
        pc->features_read = 1;
        if (n_reader_features < PCSC_MAX_READERS && strlen(pc->reader) < sizeof reader_features[0].reader) {
            strcpy(reader_features[n_reader_features].reader, pc->reader);
            reader_features[n_reader_features++].features = pc->features;
        }
    }
    *has_pad = pc->features.verify != 0;
    return UKEY_OK;
}

ukey_err card_verify_pin_pad(struct card *card, const struct pinpad_params *p, unsigned *sw)
{
    struct pcsc_card *pc = card->pcsc;
    unsigned char cmd[PINPAD_MAX_STRUCT], resp[258];
    DWORD len = 0;
    size_t n;
    int has_pad;
    ukey_err e;
    LONG rv;

    *sw = 0;
    if ((e = card_pin_pad(card, &has_pad)) != UKEY_OK)
        return e;
    if (!has_pad)
        return UKEY_ERR_PIN_REQUIRED; /* no pad here: the PIN must come with the request */
    if (!(n = pinpad_build_verify(p, cmd, sizeof cmd)))
        return UKEY_ERR_INTERNAL;
    /* The reader sends the VERIFY with the typed PIN: never run the
     * operation twice (see card_transmit). */
    pc->secret_sent = 1;
    rv = SCardControl(pc->handle, pc->features.verify, cmd, (DWORD)n, resp, sizeof resp, &len);
    if (rv != SCARD_S_SUCCESS)
        return exchange_error(card, "SCardControl(VERIFY_PIN_DIRECT)", rv);
    /* The answer is the card's SW1 SW2, or the reader's own (6400 timeout...). */
    if (len < 2 || len > sizeof resp) {
        log_debug("pcsc: VERIFY_PIN_DIRECT: answer of %lu bytes", (unsigned long)len);
        return exchange_failed(card, UKEY_ERR_CARD_ERROR);
    }
    *sw = (unsigned)resp[len - 2] << 8 | resp[len - 1];
    if ((e = pinpad_reader_sw(*sw)) != UKEY_OK) {
        log_info("pcsc: the PIN pad answered %04x (%s)", *sw, err_code(e));
        return e;
    }
    return UKEY_OK;
}

/* The hotplug monitor ----------------------------------------------------- */

static pthread_t monitor_thread;
static pthread_mutex_t monitor_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t monitor_cond = PTHREAD_COND_INITIALIZER;
static int monitor_running, monitor_stopping;
static SCARDCONTEXT monitor_ctx;
static int monitor_has_ctx;
static void (*monitor_cb)(enum pcsc_event, const char *, void *);
static void *monitor_arg;
/* A request found pcscd back while the monitor waited to look for it again. */
static int monitor_kicked;

/* What the monitor knows of the readers, for pcsc_status (under
 * monitor_lock): valid only while it holds a live context and waits for the
 * next change with the state it last got, so that a pcscd gone or not yet
 * seen makes pcsc_status ask PC/SC itself. */
static struct {
    int valid;
    int readers, cards;
} monitor_view;

/* What the monitor last saw, to report differences only. */
struct seen {
    char name[128];
    int present;
    unsigned events;
};

/* Sleeps up to `ms` or until stop is requested; returns 1 if stopping. */
static int monitor_wait(long ms)
{
    struct timespec until;
    int stopping;
    clock_realtime_in(ms, &until);
    pthread_mutex_lock(&monitor_lock);
    while (!monitor_stopping && !monitor_kicked && pthread_cond_timedwait(&monitor_cond, &monitor_lock, &until) == 0)
        ;
    monitor_kicked = 0;
    stopping = monitor_stopping;
    pthread_mutex_unlock(&monitor_lock);
    return stopping;
}

/* Compares the readers now in `states` with `seen` and reports each change. */
static void report_changes(const SCARD_READERSTATE *states, size_t n, struct seen *seen,
                           size_t *n_seen)
{
    struct seen now[PCSC_MAX_READERS];
    size_t n_now = 0;

    for (size_t i = 0; i < n && n_now < PCSC_MAX_READERS; i++, n_now++) {
        snprintf(now[n_now].name, sizeof now[n_now].name, "%s", states[i].szReader);
        now[n_now].present = (states[i].dwEventState & SCARD_STATE_PRESENT) != 0;
        now[n_now].events = (unsigned)(states[i].dwEventState >> 16);
    }
    for (size_t j = 0; j < *n_seen; j++) {
        int still = 0;
        for (size_t i = 0; i < n_now; i++)
            still |= strcmp(seen[j].name, now[i].name) == 0;
        if (!still) {
            if (seen[j].present)
                monitor_cb(PCSC_CARD_REMOVED, seen[j].name, monitor_arg);
            monitor_cb(PCSC_READER_REMOVED, seen[j].name, monitor_arg);
        }
    }
    for (size_t i = 0; i < n_now; i++) {
        const struct seen *before = NULL;
        for (size_t j = 0; j < *n_seen; j++)
            if (strcmp(seen[j].name, now[i].name) == 0)
                before = &seen[j];
        if (!before)
            monitor_cb(PCSC_READER_ADDED, now[i].name, monitor_arg);
        /* A card swapped between two looks shows as the same presence with a
         * new event count: report the removal and the insertion. */
        if (before && before->present && (!now[i].present || before->events != now[i].events))
            monitor_cb(PCSC_CARD_REMOVED, now[i].name, monitor_arg);
        if (now[i].present && (!before || !before->present || before->events != now[i].events))
            monitor_cb(PCSC_CARD_INSERTED, now[i].name, monitor_arg);
    }
    memcpy(seen, now, n_now * sizeof *now);
    *n_seen = n_now;
}

/* Publishes the readers the monitor now knows (`n` < 0: it knows nothing). */
static void publish_view(const SCARD_READERSTATE *states, long n)
{
    pthread_mutex_lock(&monitor_lock);
    monitor_view.valid = n >= 0;
    monitor_view.readers = n > 0 ? (int)n : 0;
    monitor_view.cards = 0;
    for (long i = 0; i < n; i++)
        monitor_view.cards += (states[i].dwEventState & SCARD_STATE_PRESENT) != 0;
    pthread_mutex_unlock(&monitor_lock);
}

void pcsc_status(struct pcsc_probe *out)
{
    int known;
    pthread_mutex_lock(&monitor_lock);
    memset(out, 0, sizeof *out);
    if ((known = monitor_view.valid)) {
        out->available = 1;
        out->readers = monitor_view.readers;
        out->cards = monitor_view.cards;
    }
    pthread_mutex_unlock(&monitor_lock);
    if (known)
        return;
    pcsc_probe(out);
    if (out->available) {
        /* pcscd is back before the monitor looked again: it looks now. */
        pthread_mutex_lock(&monitor_lock);
        monitor_kicked = 1;
        pthread_cond_broadcast(&monitor_cond);
        pthread_mutex_unlock(&monitor_lock);
    }
}

/* The monitor's wait for a change. Not INFINITE: pcsc-lite's client makes
 * that wait 60 s long, then drops and renews its registration with pcscd
 * (winscard_clnt.c), three wake-ups a minute of an idle agent. A wait of
 * an hour sleeps through; pcscd's end still ends it (its socket closes),
 * and SCardCancel any wait. */
#define MONITOR_WAIT_MS ((DWORD)60 * 60 * 1000)

/* One life of the monitor on one PC/SC context; returns when pcscd goes
 * away (to reconnect) or when stopping. */
static void monitor_session(SCARDCONTEXT ctx, struct seen *seen, size_t *n_seen)
{
    SCARD_READERSTATE states[PCSC_MAX_READERS + 1];
    char *names = NULL;
    size_t n = 0;
    int rebuild = 1;

    for (;;) {
        LONG rv;
        if (rebuild) {
            free(names);
            if (list_names(ctx, &names) != SCARD_S_SUCCESS)
                break;
            n = 0;
            for (char *r = names; r && *r && n < PCSC_MAX_READERS; r += strlen(r) + 1) {
                memset(&states[n], 0, sizeof states[n]);
                states[n].szReader = r;
                states[n].dwCurrentState = SCARD_STATE_UNAWARE;
                n++;
            }
            /* The PnP pseudo-reader changes when a reader comes or goes. */
            memset(&states[n], 0, sizeof states[n]);
            states[n].szReader = "\\\\?PnP?\\Notification";
            states[n].dwCurrentState = SCARD_STATE_UNAWARE;
            rv = SCardGetStatusChange(ctx, 0, states, (DWORD)(n + 1));
            if (rv != SCARD_S_SUCCESS && rv != (LONG)SCARD_E_TIMEOUT)
                break;
            report_changes(states, n, seen, n_seen);
            publish_view(states, (long)n);
            for (size_t i = 0; i <= n; i++)
                states[i].dwCurrentState = states[i].dwEventState & ~(DWORD)SCARD_STATE_CHANGED;
            rebuild = 0;
        }
        if (monitor_wait(0)) /* stopping: SCardCancel only ends a wait already begun */
            break;
        rv = SCardGetStatusChange(ctx, MONITOR_WAIT_MS, states, (DWORD)(n + 1));
        if (rv == (LONG)SCARD_E_TIMEOUT)
            continue; /* nothing changed */
        if (rv != SCARD_S_SUCCESS || (states[n].dwEventState & SCARD_STATE_CHANGED))
            publish_view(NULL, -1); /* until it has looked again */
        if (rv == (LONG)SCARD_E_CANCELLED || service_went_away(rv) || rv == (LONG)SCARD_E_INVALID_HANDLE)
            break;
        if (rv != SCARD_S_SUCCESS) {
            if (monitor_wait(500))
                break;
            rebuild = 1;
            continue;
        }
        if (states[n].dwEventState & SCARD_STATE_CHANGED) {
            rebuild = 1;
            continue;
        }
        report_changes(states, n, seen, n_seen);
        publish_view(states, (long)n);
        for (size_t i = 0; i <= n; i++)
            states[i].dwCurrentState = states[i].dwEventState & ~(DWORD)SCARD_STATE_CHANGED;
    }
    publish_view(NULL, -1);
    free(names);
}

static void *monitor_main(void *unused)
{
    struct seen seen[PCSC_MAX_READERS];
    size_t n_seen = 0;
    long backoff = 250;
    (void)unused;

    for (;;) {
        SCARDCONTEXT ctx;
        LONG rv;
        pthread_mutex_lock(&monitor_lock);
        if (monitor_stopping) {
            pthread_mutex_unlock(&monitor_lock);
            break;
        }
        rv = SCardEstablishContext(SCARD_SCOPE_USER, NULL, NULL, &ctx);
        if (rv == SCARD_S_SUCCESS) {
            monitor_ctx = ctx;
            monitor_has_ctx = 1;
        }
        pthread_mutex_unlock(&monitor_lock);
        if (rv == SCARD_S_SUCCESS) {
            monitor_session(ctx, seen, &n_seen);
            pthread_mutex_lock(&monitor_lock);
            monitor_has_ctx = 0;
            SCardReleaseContext(ctx);
            pthread_mutex_unlock(&monitor_lock);
            backoff = 250;
        } else if (n_seen > 0) {
            /* pcscd is gone: every reader and card with it. */
            report_changes(NULL, 0, seen, &n_seen);
        }
        /* Back off while pcscd is away (up to 5 s), so a stopped service costs
         * a few wake-ups, not a busy loop. */
        if (monitor_wait(backoff))
            break;
        backoff = backoff < 5000 ? backoff * 2 : 5000;
    }
    return NULL;
}

int pcsc_monitor_start(void (*cb)(enum pcsc_event ev, const char *reader, void *arg), void *arg)
{
    monitor_cb = cb;
    monitor_arg = arg;
    monitor_stopping = 0;
    if (pthread_create(&monitor_thread, NULL, monitor_main, NULL) != 0)
        return -1;
    monitor_running = 1;
    return 0;
}

void pcsc_monitor_stop(void)
{
    if (!monitor_running)
        return;
    pthread_mutex_lock(&monitor_lock);
    monitor_stopping = 1;
    pthread_cond_broadcast(&monitor_cond);
    pthread_mutex_unlock(&monitor_lock);
    /* SCardCancel ends a wait in progress only: the thread may be between two
     * (reporting a card that just came), so cancel again until it has left. */
    do {
        pthread_mutex_lock(&monitor_lock);
        if (monitor_has_ctx)
            SCardCancel(monitor_ctx);
        pthread_mutex_unlock(&monitor_lock);
    } while (join_within(monitor_thread, 200) == ETIMEDOUT);
    monitor_running = 0;
}
