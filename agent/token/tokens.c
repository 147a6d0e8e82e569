/* The token service; see tokens.h. */
#include "token/tokens.h"

#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Every driver, tried in this order on a new card. */
static const struct token_driver *const drivers[] = {&piv_driver, &openpgp_driver};

/* What was read from the card now in each reader, valid while the reader's
 * event counter and ATR stay the same (the card was not swapped). */
struct cache_entry {
    int used;
    char reader[128];
    unsigned events;
    unsigned char atr[PCSC_MAX_ATR];
    size_t atr_len;
    ukey_err err;
    struct token t;
};

static struct cache_entry cache[PCSC_MAX_READERS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const state_names[] = {"empty", "present", "unresponsive", "in_use"};

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

/* Makes sure the cache holds the card in reader `r`, reading it if it is
 * new. Returns the index of its entry (the entry's err says how it went). */
static size_t cache_fill(const struct reader_info *r)
{
    struct token t;
    ukey_err e;
    size_t slot = 0;

    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < PCSC_MAX_READERS; i++) {
        if (same_card(&cache[i], r)) {
            pthread_mutex_unlock(&cache_lock);
            return i;
        }
    }
    pthread_mutex_unlock(&cache_lock);

    memset(&t, 0, sizeof t);
    e = pcsc_with_card(r->name, CARD_LEAVE, read_card, &t);
    snprintf(t.reader, sizeof t.reader, "%s", r->name);
    if (e != UKEY_OK)
        log_info("token in \"%s\" not read: %s", r->name, err_code(e));

    pthread_mutex_lock(&cache_lock);
    /* Reuse this reader's entry, else a free one, else the first. */
    for (size_t i = PCSC_MAX_READERS; i-- > 0;)
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
    pthread_mutex_unlock(&cache_lock);
    return slot;
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

static char *hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02X", b[i]);
    out[2 * n] = '\0';
    return out;
}

ukey_err tokens_list(json_t **out)
{
    struct reader_info readers[PCSC_MAX_READERS];
    json_t *rlist = json_array(), *tlist = json_array();
    const char *why = NULL;
    size_t n;
    ukey_err e = pcsc_list(readers, &n, &why);

    for (size_t i = 0; e == UKEY_OK && i < n; i++) {
        char atr[2 * PCSC_MAX_ATR + 1];
        json_t *r = json_pack("{s:s, s:s, s:s}", "name", readers[i].name, "state",
                              state_names[readers[i].state], "atr",
                              hex(readers[i].atr, readers[i].atr_len, atr));
        ukey_err te = readers[i].state == READER_IN_USE ? UKEY_ERR_TOKEN_BUSY
                      : readers[i].state == READER_MUTE ? UKEY_ERR_CARD_ERROR : UKEY_OK;
        if (readers[i].state == READER_PRESENT) {
            size_t slot = cache_fill(&readers[i]);
            struct token probe;
            pthread_mutex_lock(&cache_lock);
            te = cache[slot].err;
            memset(&probe, 0, sizeof probe);
            probe.driver = cache[slot].t.driver;
            pthread_mutex_unlock(&cache_lock);
            /* The PIN counter changes behind our back: read it every time. */
            if (te == UKEY_OK)
                te = pcsc_with_card(readers[i].name, CARD_LEAVE, read_pin_status, &probe);
            pthread_mutex_lock(&cache_lock);
            if (te == UKEY_OK && cache[slot].err == UKEY_OK) {
                cache[slot].t.pin = probe.pin;
                json_object_set_new(r, "token", json_string(cache[slot].t.id));
                json_array_append_new(tlist, token_json(&cache[slot].t));
            }
            pthread_mutex_unlock(&cache_lock);
        }
        if (te != UKEY_OK)
            json_object_set_new(r, "error", error_json(te));
        json_array_append_new(rlist, r);
    }
    if (out)
        *out = json_pack("{s:{s:b, s:s*}, s:o, s:o}", "pcsc", "available", e != UKEY_ERR_PCSC_UNAVAILABLE,
                         "error", why, "readers", rlist, "tokens", tlist);
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

/* One PIN operation inside one transaction: same card?, counter, guard,
 * the operation, logout, counter again. The caller resets the card after. */
static ukey_err pin_on_card(struct card *card, void *arg)
{
    struct pin_job *job = arg;
    const struct token_driver *d = job->driver;
    char id[TOKEN_ID_LEN];
    ukey_err e, after;

    if ((e = d->match(card)) != UKEY_OK)
        return e;
    /* The card in the reader must still be the token the caller named (CARD-05). */
    if ((e = d->identify(card, id)) != UKEY_OK)
        return e;
    if (strcmp(id, job->id) != 0)
        return UKEY_ERR_TOKEN_NOT_FOUND;
    if ((e = d->pin_status(card, job->pin)) != UKEY_OK)
        return e;
    if (job->req->op != TOKEN_PIN_UNBLOCK) {
        if (job->pin->blocked)
            return UKEY_ERR_PIN_BLOCKED;
        /* Never spend the last try unless the caller said so (security.md CARD-02). */
        if (job->pin->retries_left == 1 && !job->req->confirm_last_attempt)
            return UKEY_ERR_PIN_LAST_ATTEMPT;
    }
    e = d->pin_op(card, job->req->op, job->req->a, job->req->b, job->pin);
    d->logout(card);
    {
        struct token_pin now = *job->pin;
        after = d->pin_status(card, &now);
        /* After a wrong PUK keep the PUK's counter the driver reported. */
        if (after == UKEY_OK && e != UKEY_ERR_PUK_INCORRECT && e != UKEY_ERR_PUK_BLOCKED)
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
    for (size_t i = 0; i < PCSC_MAX_READERS && e == UKEY_ERR_TOKEN_NOT_FOUND; i++) {
        const struct token *t = &cache[i].t;
        if (!cache[i].used || cache[i].err != UKEY_OK || (id && strcmp(t->id, id) != 0))
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

void tokens_update_pin(const char *id, const struct token_pin *pin)
{
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < PCSC_MAX_READERS; i++)
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
    if ((e = tokens_find(id, NULL, &job.driver, token_id, reader, pin, NULL)) != UKEY_OK)
        return e;
    /* Formats first: a malformed PIN never reaches the card. */
    if (token_pin_format(pin, req->a) != UKEY_OK || (req->b && token_pin_format(pin, req->b) != UKEY_OK))
        return UKEY_ERR_PIN_FORMAT;
    e = pcsc_with_card(reader, CARD_RESET, pin_on_card, &job);
    tokens_update_pin(id, pin);
    return e;
}

ukey_err tokens_in_reader(const char *reader, char id[TOKEN_ID_LEN])
{
    struct reader_info readers[PCSC_MAX_READERS];
    size_t n, slot;
    ukey_err e = pcsc_list(readers, &n, NULL);
    for (size_t i = 0; e == UKEY_OK && i < n; i++) {
        if (strcmp(readers[i].name, reader) != 0)
            continue;
        if (readers[i].state != READER_PRESENT)
            return readers[i].state == READER_IN_USE ? UKEY_ERR_TOKEN_BUSY : UKEY_ERR_CARD_ERROR;
        slot = cache_fill(&readers[i]);
        pthread_mutex_lock(&cache_lock);
        e = cache[slot].err;
        if (e == UKEY_OK)
            memcpy(id, cache[slot].t.id, TOKEN_ID_LEN);
        pthread_mutex_unlock(&cache_lock);
        return e;
    }
    return e == UKEY_OK ? UKEY_ERR_TOKEN_NOT_FOUND : e;
}

int tokens_forget_reader(const char *reader, char id[TOKEN_ID_LEN])
{
    int known = 0;
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < PCSC_MAX_READERS; i++) {
        if (cache[i].used && strcmp(cache[i].reader, reader) == 0) {
            if (cache[i].err == UKEY_OK) {
                memcpy(id, cache[i].t.id, TOKEN_ID_LEN);
                known = 1;
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
    for (size_t i = 0; i < PCSC_MAX_READERS; i++)
        token_clear(&cache[i].t), cache[i].used = 0;
    pthread_mutex_unlock(&cache_lock);
}
