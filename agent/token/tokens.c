/* The token service; see tokens.h. */
#include "token/tokens.h"

#include "token/pkcs11.h"
#include "token/skf.h"
#include "util/clock.h"
#include "util/hex.h"
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Every driver, tried in this order on a new card; each declines what is
 * not its kind (APDU drivers a PKCS#11 slot or SKF device, and the other
 * way round). */
static const struct token_driver *const drivers[] = {&piv_driver, &openpgp_driver, &pkcs11_driver, &skf_driver};

#define TOKENS_MAX_SLOTS (PCSC_MAX_READERS + P11_MAX_SLOTS + SKF_MAX_DEVICES)

/* What was read from the card now in each reader, valid while the reader's
 * event counter and ATR stay the same (the card was not swapped). */
struct cache_entry {
    int used;
    char reader[128];
    unsigned events;
    unsigned char atr[PCSC_MAX_ATR];
    size_t atr_len;
    ukey_err err;
    int shadowed;               /* a PKCS#11 view of a card a PC/SC driver shows */
    int pin_max;                /* the PIN's count after a right PIN, once seen; -1 until then */
    struct token t;
};

static struct cache_entry cache[TOKENS_MAX_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const state_names[] = {"empty", "present", "unresponsive", "in_use"};

ukey_err token_with_card(const char *reader, enum card_end end, ukey_err (*fn)(struct card *card, void *arg),
                         void *arg)
{
    return p11_owns(reader)   ? p11_with_slot(reader, end, fn, arg)
           : skf_owns(reader) ? skf_with_device(reader, end, fn, arg)
                              : pcsc_with_card(reader, end, fn, arg);
}

/* The backend a reader name belongs to, and its library's path (NULL for PC/SC). */
static const char *backend_of(const char *reader, const char **module)
{
    if (p11_owns(reader))
        return *module = p11_module_of(reader), "pkcs11";
    if (skf_owns(reader))
        return *module = skf_module_of(reader), "skf";
    return *module = NULL, "pcsc";
}

/* 1 for a PC/SC reader (not a library's slot or device). */
static int pcsc_reader(const char *reader) { return !p11_owns(reader) && !skf_owns(reader); }

/* The PC/SC readers, then the PKCS#11 modules' tokens, then the SKF
 * libraries' devices. Returns the PC/SC answer (UKEY_OK or
 * PCSC_UNAVAILABLE, with `why`); *n counts them all. */
static ukey_err list_slots(struct reader_info out[TOKENS_MAX_SLOTS], size_t *n, const char **why)
{
    ukey_err e = pcsc_list(out, n, why);
    if (e != UKEY_OK)
        *n = 0;
    *n += p11_list(out + *n, TOKENS_MAX_SLOTS - *n);
    *n += skf_list(out + *n, TOKENS_MAX_SLOTS - *n);
    return e;
}

static ukey_err read_card(struct card *card, void *arg)
{
    struct token *t = arg;
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++) {
        ukey_err e = drivers[i]->match(card);
        if (e == UKEY_ERR_TOKEN_NOT_SUPPORTED)
            continue;
        if (e != UKEY_OK)
            return e;
        t->driver = drivers[i];
        e = drivers[i]->read(card, t);
        return e == UKEY_OK ? drivers[i]->pin_status(card, &t->pin) : e;
    }
    return UKEY_ERR_TOKEN_NOT_SUPPORTED;
}

static int same_card(const struct cache_entry *c, const struct reader_info *r)
{
    return c->used && strcmp(c->reader, r->name) == 0 && c->events == r->events &&
           c->atr_len == r->atr_len && memcmp(c->atr, r->atr, r->atr_len) == 0;
}

/* 1 if two tokens hold a certificate in common: one card seen through two
 * backends (a PC/SC driver and a PKCS#11 module). */
static int same_card_certs(const struct token *a, const struct token *b)
{
    for (size_t i = 0; i < a->n_certs; i++)
        for (size_t j = 0; j < b->n_certs; j++)
            if (a->certs[i].der_len == b->certs[j].der_len &&
                memcmp(a->certs[i].der, b->certs[j].der, a->certs[i].der_len) == 0)
                return 1;
    return 0;
}

/* With cache_lock held: the entry just read and the others find their
 * twins, a PKCS#11 view and a PC/SC reading of one card; the view is
 * shadowed. */
static void mark_twins(size_t slot)
{
    struct cache_entry *a = &cache[slot];
    for (size_t i = 0; a->err == UKEY_OK && i < TOKENS_MAX_SLOTS; i++) {
        struct cache_entry *b = &cache[i];
        if (i != slot && b->used && b->err == UKEY_OK &&
            ((p11_owns(a->reader) && pcsc_reader(b->reader)) || (pcsc_reader(a->reader) && p11_owns(b->reader))) &&
            same_card_certs(&a->t, &b->t))
            (p11_owns(a->reader) ? a : b)->shadowed = 1;
    }
}

/* Whether a reading's outcome holds for the whole insertion: the token
 * read, or a card no driver knows. Any other failure (the card busy with
 * another program, pulled or reset mid-read, a PKCS#11 module's view of
 * it lagging behind its reader, a garbled answer) is kept for this look
 * only: the next one reads the card again, as nothing about the reader
 * changes to say that it would now work. */
static int lasting(ukey_err e) { return e == UKEY_OK || e == UKEY_ERR_TOKEN_NOT_SUPPORTED; }

/* Makes sure the cache holds the card in reader `r`, reading it if it is
 * new or its last reading failed for a passing reason. Returns the index
 * of its entry (the entry's err says how it went). */
static size_t cache_fill(const struct reader_info *r)
{
    struct token t;
    ukey_err e;
    size_t slot = 0;

    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < TOKENS_MAX_SLOTS; i++) {
        if (same_card(&cache[i], r) && lasting(cache[i].err)) {
            pthread_mutex_unlock(&cache_lock);
            return i;
        }
    }
    pthread_mutex_unlock(&cache_lock);

    memset(&t, 0, sizeof t);
    e = token_with_card(r->name, CARD_LEAVE, read_card, &t);
    snprintf(t.reader, sizeof t.reader, "%s", r->name);
    if (e != UKEY_OK)
        log_info("token in \"%s\" not read: %s", r->name, err_code(e));

    pthread_mutex_lock(&cache_lock);
    /* Reuse this reader's entry, else a free one, else the first. */
    for (size_t i = TOKENS_MAX_SLOTS; i-- > 0;)
        if (!cache[i].used || strcmp(cache[i].reader, r->name) == 0)
            slot = i;
    token_clear(&cache[slot].t);
    cache[slot].used = 1;
    snprintf(cache[slot].reader, sizeof cache[slot].reader, "%s", r->name);
    cache[slot].events = r->events;
    memcpy(cache[slot].atr, r->atr, r->atr_len);
    cache[slot].atr_len = r->atr_len;
    cache[slot].err = e;
    cache[slot].t = t; /* takes the certificates */
    cache[slot].shadowed = 0;
    cache[slot].pin_max = -1;
    mark_twins(slot);
    pthread_mutex_unlock(&cache_lock);
    return slot;
}

/* A PUK counter the card cannot read (PIV without GET METADATA) is the one
 * it last told, in the answer to a wrong PUK: `known` is that state. */
static void keep_puk_count(struct token_pin *fresh, const struct token_pin *known)
{
    if (fresh->puk_untold && fresh->puk_retries_left < 0 && known->puk_retries_left >= 0) {
        fresh->puk_retries_left = known->puk_retries_left;
        fresh->puk_blocked = known->puk_blocked;
    }
}

static ukey_err read_pin_status(struct card *card, void *arg)
{
    struct token *t = arg;
    ukey_err e = t->driver->match(card);
    return e == UKEY_OK ? t->driver->pin_status(card, &t->pin) : e;
}

static json_t *error_json(ukey_err e)
{
    return json_pack("{s:s, s:s, s:s}", "code", err_code(e), "zh-CN", err_message_zh(e), "en",
                     err_message_en(e));
}

/* Reads the PIN state of the token in readers[i] (its certificates come from
 * the cache) and returns its cache slot, or -1 with *te saying why not. */
static long token_in(const struct reader_info *r, ukey_err *te)
{
    size_t slot = cache_fill(r);
    struct token probe;
    memset(&probe, 0, sizeof probe);
    pthread_mutex_lock(&cache_lock);
    /* The entry may have been dropped (card pulled) or reused since. */
    *te = same_card(&cache[slot], r) ? cache[slot].err : UKEY_ERR_TOKEN_REMOVED;
    probe.driver = cache[slot].t.driver;
    pthread_mutex_unlock(&cache_lock);
    /* The PIN counter changes behind our back: read it every time. */
    if (*te == UKEY_OK)
        *te = token_with_card(r->name, CARD_LEAVE, read_pin_status, &probe);
    pthread_mutex_lock(&cache_lock);
    if (*te == UKEY_OK && same_card(&cache[slot], r) && cache[slot].err == UKEY_OK) {
        keep_puk_count(&probe.pin, &cache[slot].t.pin);
        cache[slot].t.pin = probe.pin;
    } else {
        slot = (size_t)-1;
    }
    pthread_mutex_unlock(&cache_lock);
    return (long)slot;
}

ukey_err tokens_list(json_t **out)
{
    struct reader_info readers[TOKENS_MAX_SLOTS];
    long slot_of[TOKENS_MAX_SLOTS], twin_of[TOKENS_MAX_SLOTS]; /* twin_of: the PC/SC reader of the same card */
    json_t *rlist = json_array(), *tlist = json_array();
    const char *why = NULL;
    size_t n;
    ukey_err e = list_slots(readers, &n, &why);
    int pcsc_available = e != UKEY_ERR_PCSC_UNAVAILABLE;

    for (size_t i = 0; i < n; i++) {
        char atr[2 * PCSC_MAX_ATR + 1];
        const char *module;
        json_t *r = json_pack("{s:s, s:s}", "name", readers[i].name, "state", state_names[readers[i].state]);
        ukey_err te = readers[i].state == READER_IN_USE ? UKEY_ERR_TOKEN_BUSY
                      : readers[i].state == READER_MUTE ? UKEY_ERR_CARD_ERROR : UKEY_OK;
        backend_of(readers[i].name, &module);
        json_object_set_new(r, module ? "module" : "atr",
                            json_string(module ? module : hex_encode(atr, readers[i].atr, readers[i].atr_len, 1)));
        slot_of[i] = readers[i].state == READER_PRESENT ? token_in(&readers[i], &te) : -1;
        if (te != UKEY_OK)
            json_object_set_new(r, "error", error_json(te));
        json_array_append_new(rlist, r);
    }
    pthread_mutex_lock(&cache_lock);
    /* Between token_in and here another request or the hotplug monitor may
     * have dropped or reused an entry: only those still holding the card
     * read in that reader count. */
    for (size_t i = 0; i < n; i++)
        if (slot_of[i] >= 0 && !(same_card(&cache[slot_of[i]], &readers[i]) && cache[slot_of[i]].err == UKEY_OK))
            slot_of[i] = -1;
    for (size_t i = 0; i < n; i++) {
        struct cache_entry *c = slot_of[i] >= 0 ? &cache[slot_of[i]] : NULL;
        if (!c)
            continue;
        json_object_set_new(json_array_get(rlist, i), "token", json_string(c->t.id));
        /* A PKCS#11 module's view of a card that a PC/SC driver reads too is
         * the same token: show it once, the PC/SC way, naming the other. */
        twin_of[i] = -1;
        for (size_t j = 0; p11_owns(readers[i].name) && j < n && twin_of[i] < 0; j++)
            if (slot_of[j] >= 0 && pcsc_reader(readers[j].name) && same_card_certs(&cache[slot_of[j]].t, &c->t))
                twin_of[i] = (long)j;
        c->shadowed = twin_of[i] >= 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct cache_entry *c = slot_of[i] >= 0 ? &cache[slot_of[i]] : NULL;
        json_t *tj, *also;
        const char *module;
        if (!c || c->shadowed)
            continue;
        c->t.pin.retry_after_ms = tokens_pin_wait(c->t.id);
        tj = token_json(&c->t);
        json_object_set_new(tj, "backend", json_string(backend_of(readers[i].name, &module)));
        if (module)
            json_object_set_new(tj, "module", json_string(module));
        also = json_array();
        for (size_t j = 0; j < n; j++)
            if (slot_of[j] >= 0 && twin_of[j] == (long)i)
                json_array_append_new(also, json_pack("{s:s, s:s, s:s}", "id", cache[slot_of[j]].t.id, "reader",
                                                      readers[j].name, "module", p11_module_of(readers[j].name)));
        if (json_array_size(also) > 0)
            json_object_set_new(tj, "also_via", also);
        else
            json_decref(also);
        json_array_append_new(tlist, tj);
    }
    pthread_mutex_unlock(&cache_lock);
    /* Without PC/SC the PKCS#11 modules and SKF libraries may still have tokens. */
    if (e == UKEY_ERR_PCSC_UNAVAILABLE && p11_loaded() + skf_loaded() > 0)
        e = UKEY_OK;
    if (out)
        *out = json_pack("{s:{s:b, s:s*}, s:o, s:o, s:o, s:o}", "pcsc", "available", pcsc_available, "error", why,
                         "pkcs11", p11_modules_json(), "skf", skf_modules_json(), "readers", rlist, "tokens", tlist);
    else
        json_decref(rlist), json_decref(tlist);
    return e;
}

struct pin_job {
    const struct pin_request *req;
    const char *id;
    const struct token_driver *driver;
    struct token_pin *pin;
};

/* One PIN operation inside one transaction: pacing, same card?, counters,
 * guard, the operation, logout, counters again. The caller resets the card
 * after. Pacing is judged and recorded inside the transaction, so requests
 * queued for the card at once meet the pause the first one left. */
static ukey_err pin_on_card(struct card *card, void *arg)
{
    struct pin_job *job = arg;
    const struct token_driver *d = job->driver;
    struct token_pin known = *job->pin, now;
    char id[TOKEN_ID_LEN];
    ukey_err e;

    if ((job->pin->retry_after_ms = tokens_pin_wait(job->id)) > 0)
        return UKEY_ERR_PIN_TOO_SOON;
    if ((e = d->match(card)) != UKEY_OK)
        return e;
    /* The card in the reader must still be the token the caller named (CARD-05). */
    if ((e = d->identify(card, id)) != UKEY_OK)
        return e;
    if (strcmp(id, job->id) != 0)
        return UKEY_ERR_TOKEN_NOT_FOUND;
    if ((e = d->pin_status(card, job->pin)) != UKEY_OK)
        return e;
    keep_puk_count(job->pin, &known);
    /* Never spend the last try unless the caller said so (security.md
     * CARD-02): of the PIN, or for an unblock of the PUK. A PUK counter the
     * card cannot tell may be at its last try. */
    if (job->req->op != TOKEN_PIN_UNBLOCK) {
        if (job->pin->blocked)
            return UKEY_ERR_PIN_BLOCKED;
        if (job->pin->retries_left == 1 && !job->req->confirm_last_attempt)
            return UKEY_ERR_PIN_LAST_ATTEMPT;
    } else {
        if (job->pin->puk_blocked)
            return UKEY_ERR_PUK_BLOCKED;
        if ((job->pin->puk_retries_left == 1 || (job->pin->puk_retries_left < 0 && job->pin->puk_untold)) &&
            !job->req->confirm_last_attempt)
            return UKEY_ERR_PUK_LAST_ATTEMPT;
    }
    e = d->pin_op(card, job->req->op, job->req->a, job->req->b, job->pin);
    job->pin->retry_after_ms = tokens_pin_outcome(job->id, e);
    d->logout(card);
    /* A right PUK restores its tries: the count told before is void. */
    if (e == UKEY_OK && job->req->op == TOKEN_PIN_UNBLOCK)
        job->pin->puk_retries_left = -1, job->pin->puk_blocked = 0;
    now = *job->pin;
    if (d->pin_status(card, &now) == UKEY_OK) {
        keep_puk_count(&now, job->pin);
        *job->pin = now;
    }
    return e;
}

/* Looks in the cache only; the lock is taken here. */
static ukey_err find_cached(const char *id, const char *cert_id, const struct token_driver **driver,
                            char token_id[TOKEN_ID_LEN], char reader[128], struct token_pin *pin,
                            struct token_cert_copy *cert)
{
    ukey_err e = UKEY_ERR_TOKEN_NOT_FOUND;
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < TOKENS_MAX_SLOTS && e == UKEY_ERR_TOKEN_NOT_FOUND; i++) {
        const struct token *t = &cache[i].t;
        /* The first token present is never a second view of another one. */
        if (!cache[i].used || cache[i].err != UKEY_OK || (id ? strcmp(t->id, id) != 0 : cache[i].shadowed))
            continue;
        *driver = t->driver;
        memcpy(token_id, t->id, TOKEN_ID_LEN);
        snprintf(reader, 128, "%s", cache[i].reader);
        *pin = t->pin;
        e = UKEY_OK;
        if (!cert)
            break;
        e = UKEY_ERR_CERT_NOT_FOUND;
        for (size_t j = 0; j < t->n_certs && e != UKEY_OK; j++) {
            if (cert_id ? strcmp(t->certs[j].id, cert_id) != 0 : !t->certs[j].auth)
                continue;
            snprintf(cert->id, sizeof cert->id, "%s", t->certs[j].id);
            if (!(cert->der = malloc(t->certs[j].der_len))) {
                e = UKEY_ERR_OUT_OF_MEMORY;
                break;
            }
            memcpy(cert->der, t->certs[j].der, t->certs[j].der_len);
            cert->der_len = t->certs[j].der_len;
            e = UKEY_OK;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return e;
}

ukey_err tokens_find(const char *id, const char *cert_id, const struct token_driver **driver,
                     char token_id[TOKEN_ID_LEN], char reader[128], struct token_pin *pin,
                     struct token_cert_copy *cert)
{
    ukey_err e;
    if (cert)
        memset(cert, 0, sizeof *cert);
    e = find_cached(id, cert_id, driver, token_id, reader, pin, cert);
    if (e != UKEY_ERR_TOKEN_NOT_FOUND)
        return e;
    /* Not seen yet (or swapped): look at the readers again. */
    if ((e = tokens_list(NULL)) != UKEY_OK)
        return e;
    return find_cached(id, cert_id, driver, token_id, reader, pin, cert);
}

int tokens_same_insertion(const char *id, struct card *card)
{
    unsigned char atr[PCSC_MAX_ATR];
    const char *reader;
    size_t atr_len;
    unsigned events;
    int same = 0;
    if (card_insertion(card, &reader, &events, atr, &atr_len) != UKEY_OK)
        return 0;
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < TOKENS_MAX_SLOTS; i++) {
        const struct cache_entry *c = &cache[i];
        if (c->used && c->err == UKEY_OK && strcmp(c->t.id, id) == 0 && pcsc_reader(c->reader) &&
            strcmp(c->reader, reader) == 0)
            same |= c->events == events && c->atr_len == atr_len && memcmp(c->atr, atr, atr_len) == 0;
    }
    pthread_mutex_unlock(&cache_lock);
    return same;
}

int tokens_pin_max(const char *id, int seen)
{
    int max = -1;
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < TOKENS_MAX_SLOTS; i++) {
        if (!cache[i].used || strcmp(cache[i].t.id, id) != 0)
            continue;
        if (seen >= 0)
            cache[i].pin_max = seen;
        max = cache[i].pin_max;
    }
    pthread_mutex_unlock(&cache_lock);
    return max;
}

void tokens_update_pin(const char *id, const struct token_pin *pin)
{
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < TOKENS_MAX_SLOTS; i++)
        if (cache[i].used && strcmp(cache[i].t.id, id) == 0)
            cache[i].t.pin = *pin;
    pthread_mutex_unlock(&cache_lock);
}

ukey_err tokens_pin(const char *id, const struct pin_request *req, struct token_pin *pin)
{
    struct pin_job job = {req, id, NULL, pin};
    char token_id[TOKEN_ID_LEN], reader[128];
    ukey_err e;

    memset(pin, 0, sizeof *pin);
    pin->retries_left = -1;
    pin->puk_retries_left = -1;
    if ((e = tokens_find(id, NULL, &job.driver, token_id, reader, pin, NULL)) != UKEY_OK)
        return e;
    /* No PIN to verify: typed on the reader's pad, if it has one (token.h). */
    if (!req->a && (req->op != TOKEN_PIN_VERIFY || !pin->pin_pad))
        return UKEY_ERR_BAD_REQUEST;
    /* Formats first: a malformed PIN never reaches the card. */
    if ((req->a && token_pin_format(pin, req->a) != UKEY_OK) || (req->b && token_pin_format(pin, req->b) != UKEY_OK))
        return UKEY_ERR_PIN_FORMAT;
    e = token_with_card(reader, CARD_RESET, pin_on_card, &job);
    tokens_update_pin(token_id, pin);
    return e;
}

/* The pacing of each token that had a wrong PIN or PUK lately. */
#define PACE_MAX_SHIFT 5
static struct pace {
    char id[TOKEN_ID_LEN];      /* "" for a free entry */
    unsigned fails;             /* wrong PINs/PUKs in a row */
    long long until_ms;         /* clock_ms() before which no PIN operation runs */
} paces[TOKENS_MAX_SLOTS];
static unsigned pace_base_ms = 1000;
static pthread_mutex_t pace_lock = PTHREAD_MUTEX_INITIALIZER;

void tokens_set_pin_delay(unsigned base_ms)
{
    pthread_mutex_lock(&pace_lock);
    pace_base_ms = base_ms;
    pthread_mutex_unlock(&pace_lock);
}

/* With pace_lock held: the entry of `id`, or NULL. */
static struct pace *pace_of(const char *id)
{
    for (size_t i = 0; i < TOKENS_MAX_SLOTS; i++)
        if (strcmp(paces[i].id, id) == 0)
            return &paces[i];
    return NULL;
}

/* With pace_lock held: the milliseconds left of `p`'s pause. */
static unsigned pace_left(const struct pace *p)
{
    long long left = p ? p->until_ms - clock_ms() : 0;
    return left > 0 ? (unsigned)left : 0;
}

unsigned tokens_pin_wait(const char *id)
{
    unsigned left;
    pthread_mutex_lock(&pace_lock);
    left = pace_left(pace_of(id));
    pthread_mutex_unlock(&pace_lock);
    return left;
}

unsigned tokens_pin_outcome(const char *id, ukey_err e)
{
    int wrong = e == UKEY_ERR_PIN_INCORRECT || e == UKEY_ERR_PUK_INCORRECT || e == UKEY_ERR_PIN_BLOCKED ||
                e == UKEY_ERR_PUK_BLOCKED;
    struct pace *p;
    unsigned left = 0;

    if (!wrong && e != UKEY_OK)
        return tokens_pin_wait(id); /* the card did not judge the PIN */
    pthread_mutex_lock(&pace_lock);
    p = pace_of(id);
    if (!wrong && p)
        memset(p, 0, sizeof *p);
    if (wrong && pace_base_ms > 0) {
        /* A new entry takes a free one, else the one whose pause ended first. */
        for (size_t i = 0; !p && i < TOKENS_MAX_SLOTS; i++)
            if (!paces[i].id[0])
                p = &paces[i];
        for (size_t i = 0; !p && i < TOKENS_MAX_SLOTS; i++)
            if (!p || paces[i].until_ms < p->until_ms)
                p = &paces[i];
        if (strcmp(p->id, id) != 0)
            memset(p, 0, sizeof *p), snprintf(p->id, sizeof p->id, "%s", id);
        p->until_ms = clock_ms() + ((long long)pace_base_ms << (p->fails < PACE_MAX_SHIFT ? p->fails : PACE_MAX_SHIFT));
        p->fails++;
        left = pace_left(p);
    }
    pthread_mutex_unlock(&pace_lock);
    return left;
}

/* The card left its reader: its pause ends (whoever pulls it is at the machine). */
static void pace_forget(const char *id)
{
    struct pace *p;
    pthread_mutex_lock(&pace_lock);
    if ((p = pace_of(id)))
        memset(p, 0, sizeof *p);
    pthread_mutex_unlock(&pace_lock);
}

ukey_err tokens_in_reader(const char *reader, char id[TOKEN_ID_LEN], int *shadowed)
{
    struct reader_info readers[TOKENS_MAX_SLOTS];
    size_t n, slot;
    ukey_err e = list_slots(readers, &n, NULL);
    *shadowed = 0;
    /* A module's view is told from a card the PC/SC drivers read once
     * those are read too. */
    for (size_t i = 0; p11_owns(reader) && i < n; i++)
        if (pcsc_reader(readers[i].name) && readers[i].state == READER_PRESENT)
            cache_fill(&readers[i]);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(readers[i].name, reader) != 0)
            continue;
        if (readers[i].state != READER_PRESENT)
            return readers[i].state == READER_IN_USE ? UKEY_ERR_TOKEN_BUSY : UKEY_ERR_CARD_ERROR;
        slot = cache_fill(&readers[i]);
        pthread_mutex_lock(&cache_lock);
        e = same_card(&cache[slot], &readers[i]) ? cache[slot].err : UKEY_ERR_TOKEN_REMOVED;
        if (e == UKEY_OK) {
            memcpy(id, cache[slot].t.id, TOKEN_ID_LEN);
            *shadowed = cache[slot].shadowed;
        }
        pthread_mutex_unlock(&cache_lock);
        return e;
    }
    return e == UKEY_OK ? UKEY_ERR_TOKEN_NOT_FOUND : e;
}

int tokens_forget_reader(const char *reader, char id[TOKEN_ID_LEN], int *shadowed)
{
    int known = 0;
    *shadowed = 0;
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < TOKENS_MAX_SLOTS; i++) {
        if (cache[i].used && strcmp(cache[i].reader, reader) == 0) {
            if (cache[i].err == UKEY_OK) {
                memcpy(id, cache[i].t.id, TOKEN_ID_LEN);
                known = 1;
                *shadowed = cache[i].shadowed;
                pace_forget(id);
            }
            token_clear(&cache[i].t);
            cache[i].used = 0;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return known;
}

void tokens_forget(void)
{
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < TOKENS_MAX_SLOTS; i++)
        token_clear(&cache[i].t), cache[i].used = 0;
    pthread_mutex_unlock(&cache_lock);
}
