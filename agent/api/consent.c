/*
 * Logins (issue 9) and data signatures (issue 15) confirmed in the agent's
 * own window. The portal asks for a pending request (POST /api/v1/login or
 * /api/v1/sign with "consent": true, no PIN) and gets a request id and a
 * consent URL on the agent's origin; the user sees there which site asks,
 * with which certificate, and for a signature what is signed, and types the
 * PIN into the agent's page, which no portal script can read. The portal
 * then collects the answer with GET /api/v1/login/{id} or /api/v1/sign/{id},
 * or gives the request up with DELETE on the same path.
 *
 * A request is bound to the origin and what it was made with, its id
 * is 32 random bytes, it is answered once, and it ends after
 * consent_timeout_s. The consent routes serve the agent's own pages only
 * (ROUTE_SELF_ONLY: no CORS, no other origin).
 *
 * Quotas (issue 17, W3): each origin holds at most limits.consents_per_origin
 * live (pending or signing) requests; its next one replaces its oldest
 * pending one, whose poller and window then hear CONSENT_REPLACED (a user
 * who clicks "log in" twice is never refused). Only when all of them are in
 * card work is the origin told ORIGIN_BUSY. Ended requests (done,
 * cancelled, replaced, timed out) hold no live slot: they are kept for
 * their poller until read or KEEP_ENDED_S after their timeout, at most
 * consents_per_origin of them per origin.
 */
#include "api/signing.h"

#include "server/guard.h"
#include "token/tokens.h"
#include "util/clock.h"
#include "util/hex.h"
#include "util/rng.h"
#include "util/secret.h"
#include "x509/sigenc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENTRIES 48  /* live and ended requests kept */
#define MAX_LIVE 16     /* of which pending or signing, from all origins */
#define KEEP_ENDED_S 60 /* an ended request still tells the portal why */

enum pending_state { P_FREE, P_PENDING, P_SIGNING, P_DONE, P_CANCELLED, P_REPLACED };

struct pending {
    enum pending_state state;
    long long created_ms;       /* clock_ms: the oldest is replaced first */
    char id[65];
    char origin[256];
    enum signing_kind kind;
    char challenge[LOGIN_CHALLENGE_MAX_CHARS + 1]; /* a login's: any challenge login_challenge_valid accepts */
    char token_id[128], cert_id[16], algorithm[24];
    unsigned char *data;        /* a data signature's (malloc'd), with its format and encoding */
    size_t data_len;
    enum sign_format format;
    int base64;
    long long expires_ms;       /* clock_ms */
    json_t *answer;             /* the Web eID token or the signature once signed */
};

static struct pending table[MAX_ENTRIES];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void release(struct pending *p)
{
    json_decref(p->answer);
    free(p->data);
    memset(p, 0, sizeof *p);
}

int api_origin_is_self(const struct api_request *req)
{
    struct guard_policy self;
    guard_policy_init(&self, req->agent->port, NULL, 0);
    return guard_origin_is_self(&self, req->origin);
}

int api_pin_from_page_allowed(const struct api_request *req)
{
    /* Local programs send no Origin; the agent's own pages are its window. */
    return !req->origin || api_origin_is_self(req) ||
           config_pin_entry_for(req->agent->cfg, req->origin) == PIN_ENTRY_PAGE;
}

/* Whole seconds left, rounded up. */
static json_int_t expires_in(const struct pending *p) { return (p->expires_ms - clock_ms() + 999) / 1000; }

/* The entry with `id` (lock held), NULL if none; ends what has expired. */
static struct pending *find(const char *id)
{
    long long now = clock_ms();
    struct pending *found = NULL;
    for (int i = 0; i < MAX_ENTRIES; i++) {
        struct pending *p = &table[i];
        if (p->state == P_FREE)
            continue;
        if (now > p->expires_ms + KEEP_ENDED_S * 1000LL && p->state != P_SIGNING)
            release(p);
        else if (id && strlen(id) == 64 && strcmp(p->id, id) == 0)
            found = p;
    }
    return found;
}

/* 1 if `p` holds a live slot: waiting for the user, or in card work. */
static int is_live(const struct pending *p, long long now)
{
    return p->state == P_SIGNING || (p->state == P_PENDING && now < p->expires_ms);
}

/* The oldest entry of `origin` (any origin if NULL) that is live (`live` 1)
 * or ended (`live` 0), pending only if `pending_only`; NULL if none. Lock held. */
static struct pending *oldest(const char *origin, int live, int pending_only, long long now)
{
    struct pending *found = NULL;
    for (int i = 0; i < MAX_ENTRIES; i++) {
        struct pending *p = &table[i];
        if (p->state == P_FREE || is_live(p, now) != live || (pending_only && p->state != P_PENDING) ||
            (origin && strcmp(p->origin, origin) != 0))
            continue;
        if (!found || p->created_ms < found->created_ms)
            found = p;
    }
    return found;
}

/* How many entries of `origin` (all if NULL) are live (`live` 1) or ended. Lock held. */
static unsigned count(const char *origin, int live, long long now)
{
    unsigned n = 0;
    for (int i = 0; i < MAX_ENTRIES; i++)
        n += table[i].state != P_FREE && is_live(&table[i], now) == live &&
             (!origin || strcmp(table[i].origin, origin) == 0);
    return n;
}

/* A free entry for a new request of `origin`, within the quotas (see the
 * top of this file); UKEY_OK with *out, or ORIGIN_BUSY / AGENT_BUSY. Lock held. */
static ukey_err make_room(const char *origin, unsigned quota, struct pending **out)
{
    long long now = clock_ms();
    struct pending *p;
    *out = NULL;
    find(NULL); /* frees what has ended long ago */
    if (count(origin, 1, now) >= quota) {
        if (!(p = oldest(origin, 1, 1, now)))
            return UKEY_ERR_ORIGIN_BUSY; /* every one of them is at the card */
        p->state = P_REPLACED;
    }
    while (count(origin, 0, now) > quota)
        release(oldest(origin, 0, 0, now));
    if (count(NULL, 1, now) >= MAX_LIVE)
        return UKEY_ERR_AGENT_BUSY;
    for (int i = 0; i < MAX_ENTRIES && !*out; i++)
        if (table[i].state == P_FREE)
            *out = &table[i];
    if (!*out) { /* MAX_ENTRIES > MAX_LIVE: some entry has ended */
        *out = oldest(NULL, 0, 0, now);
        release(*out);
    }
    return UKEY_OK;
}

ukey_err consent_create(const struct api_request *req, const struct signing *s, struct api_reply *reply)
{
    unsigned char raw[32], *data = NULL;
    struct pending *p = NULL;
    char url[200];
    const char *algorithm = s->kind == SIGNING_LOGIN ? s->login.algorithm : s->sign.algorithm;
    ukey_err e = UKEY_OK;

    if (s->kind == SIGNING_LOGIN && !login_challenge_valid(s->login.challenge))
        return UKEY_ERR_CHALLENGE_INVALID;
    if (strlen(req->origin) >= sizeof p->origin ||
        (s->kind == SIGNING_LOGIN && strlen(s->login.challenge) >= sizeof p->challenge) ||
        (s->who.token_id && strlen(s->who.token_id) >= sizeof p->token_id) ||
        (s->who.cert_id && strlen(s->who.cert_id) >= sizeof p->cert_id) ||
        (algorithm && strlen(algorithm) >= sizeof p->algorithm))
        return UKEY_ERR_BAD_REQUEST;
    if (s->kind == SIGNING_SIGN && !(data = malloc(s->sign.len)))
        return UKEY_ERR_OUT_OF_MEMORY;
    if (rng_random(NULL, raw, sizeof raw) != 0) {
        free(data);
        return UKEY_ERR_INTERNAL;
    }
    pthread_mutex_lock(&lock);
    e = make_room(req->origin, req->agent->cfg->consents_per_origin, &p);
    if (e == UKEY_OK) {
        hex_encode(p->id, raw, sizeof raw, 0);
        snprintf(p->origin, sizeof p->origin, "%s", req->origin);
        p->kind = s->kind;
        snprintf(p->challenge, sizeof p->challenge, "%s", s->kind == SIGNING_LOGIN ? s->login.challenge : "");
        snprintf(p->token_id, sizeof p->token_id, "%s", s->who.token_id ? s->who.token_id : "");
        snprintf(p->cert_id, sizeof p->cert_id, "%s", s->who.cert_id ? s->who.cert_id : "");
        snprintf(p->algorithm, sizeof p->algorithm, "%s", algorithm ? algorithm : "");
        if (data) {
            memcpy(data, s->sign.data, s->sign.len);
            p->data = data;
            p->data_len = s->sign.len;
            p->format = s->sign.format;
            p->base64 = s->base64;
            data = NULL;
        }
        p->created_ms = clock_ms();
        p->expires_ms = p->created_ms + req->agent->cfg->consent_timeout_s * 1000LL;
        p->state = P_PENDING;
        snprintf(url, sizeof url, "https://127.0.0.1:%u/consent.html#%s", req->agent->port, p->id);
        reply->json = json_pack("{s:s, s:s, s:i}", "request", p->id, "consent_url", url, "expires_in",
                                (int)req->agent->cfg->consent_timeout_s);
        reply->status = 202;
        if (!reply->json) {
            release(p);
            e = UKEY_ERR_OUT_OF_MEMORY;
        }
    }
    secret_wipe(raw, sizeof raw);
    pthread_mutex_unlock(&lock);
    free(data);
    return e;
}

/* GET /api/v1/login/{id} and /api/v1/sign/{id}: for the origin that asked,
 * the answer of a request of `kind`, once. */
static ukey_err result(const struct api_request *req, struct api_reply *reply, enum signing_kind kind)
{
    struct pending *p;
    ukey_err e = UKEY_OK;
    pthread_mutex_lock(&lock);
    p = find(req->param);
    if (!p || p->kind != kind || !req->origin || strcmp(p->origin, req->origin) != 0) {
        e = UKEY_ERR_CONSENT_NOT_FOUND;
    } else if (p->state == P_DONE) {
        reply->json = p->answer;
        p->answer = NULL;
        release(p);
    } else if (p->state == P_CANCELLED || p->state == P_REPLACED) {
        e = p->state == P_CANCELLED ? UKEY_ERR_USER_CANCELLED : UKEY_ERR_CONSENT_REPLACED;
        release(p);
    } else if (clock_ms() >= p->expires_ms) {
        release(p);
        e = UKEY_ERR_CONSENT_TIMEOUT;
    } else {
        reply->json = json_pack("{s:s, s:I}", "state", "pending", "expires_in", expires_in(p));
        reply->status = 202;
    }
    pthread_mutex_unlock(&lock);
    return e == UKEY_OK && !reply->json ? UKEY_ERR_OUT_OF_MEMORY : e;
}

ukey_err api_login_result(const struct api_request *req, struct api_reply *reply)
{
    return result(req, reply, SIGNING_LOGIN);
}

ukey_err api_sign_result(const struct api_request *req, struct api_reply *reply)
{
    return result(req, reply, SIGNING_SIGN);
}

/* DELETE /api/v1/login/{id} and /api/v1/sign/{id}: the origin that asked
 * gives its request up (the SDK, when the same page asks again: a double
 * click). A pending one is replaced, so its window says so on its next
 * call and signs nothing; an ended one is dropped with its answer; one
 * being signed at the card is left to finish (TOKEN_BUSY). */
static ukey_err withdraw(const struct api_request *req, struct api_reply *reply, enum signing_kind kind)
{
    struct pending *p;
    ukey_err e = UKEY_OK;
    pthread_mutex_lock(&lock);
    p = find(req->param);
    if (!p || p->kind != kind || !req->origin || strcmp(p->origin, req->origin) != 0)
        e = UKEY_ERR_CONSENT_NOT_FOUND;
    else if (p->state == P_SIGNING)
        e = UKEY_ERR_TOKEN_BUSY;
    else if (p->state == P_PENDING && clock_ms() < p->expires_ms)
        p->state = P_REPLACED;
    else
        release(p);
    pthread_mutex_unlock(&lock);
    if (e == UKEY_OK && !(reply->json = json_pack("{s:b}", "withdrawn", 1)))
        e = UKEY_ERR_OUT_OF_MEMORY;
    return e;
}

ukey_err api_login_withdraw(const struct api_request *req, struct api_reply *reply)
{
    return withdraw(req, reply, SIGNING_LOGIN);
}

ukey_err api_sign_withdraw(const struct api_request *req, struct api_reply *reply)
{
    return withdraw(req, reply, SIGNING_SIGN);
}

/* A pending, unexpired entry for the window, copied out (lock taken and
 * released; its data copied too: free out->data); UKEY_OK or why not. */
static ukey_err pending_copy(const char *id, struct pending *out, int mark_signing)
{
    struct pending *p;
    ukey_err e = UKEY_OK;
    out->data = NULL;
    pthread_mutex_lock(&lock);
    p = find(id);
    if (!p || p->state == P_DONE)
        e = UKEY_ERR_CONSENT_NOT_FOUND;
    else if (p->state == P_CANCELLED)
        e = UKEY_ERR_USER_CANCELLED;
    else if (p->state == P_REPLACED)
        e = UKEY_ERR_CONSENT_REPLACED;
    else if (clock_ms() >= p->expires_ms)
        e = UKEY_ERR_CONSENT_TIMEOUT;
    else if (p->state == P_SIGNING)
        e = UKEY_ERR_TOKEN_BUSY;
    else if (p->data && !(out->data = malloc(p->data_len)))
        e = UKEY_ERR_OUT_OF_MEMORY;
    else {
        unsigned char *data = out->data;
        *out = *p;
        out->answer = NULL;
        out->data = data;
        if (data)
            memcpy(data, p->data, p->data_len);
        if (mark_signing)
            p->state = P_SIGNING;
    }
    pthread_mutex_unlock(&lock);
    return e;
}

/* The token (and its certificate) the window will use, from the listing. */
static json_t *choose(const struct pending *p, json_t *list, json_t **cert_out)
{
    json_t *t, *c, *token = NULL;
    size_t i;
    *cert_out = NULL;
    json_array_foreach(json_object_get(list, "tokens"), i, t)
        if (!token && (!p->token_id[0] || strcmp(json_string_value(json_object_get(t, "id")), p->token_id) == 0))
            token = t;
    json_array_foreach(json_object_get(token, "certificates"), i, c)
        if (!*cert_out && (p->cert_id[0] ? strcmp(json_string_value(json_object_get(c, "id")), p->cert_id) == 0
                                         : json_is_true(json_object_get(c, "authentication"))))
            *cert_out = c;
    return token;
}

/* What a data signature signs, as the window shows it: the text, or the
 * length and SHA-256 of the bytes the page gave in Base64. */
static json_t *signed_data(const struct pending *p)
{
    unsigned char digest[64];
    char hex[65];
    if (!p->base64)
        return json_pack("{s:s, s:s, s:s%}", "format", sign_format_name(p->format), "encoding", "text", "text",
                         (const char *)p->data, p->data_len);
    if (sigenc_hash(MBEDTLS_MD_SHA256, p->data, p->data_len, digest) != 32)
        return NULL;
    hex_encode(hex, digest, 32, 0);
    return json_pack("{s:s, s:s, s:I, s:s}", "format", sign_format_name(p->format), "encoding", "base64", "bytes",
                     (json_int_t)p->data_len, "sha256", hex);
}

/* GET /api/v1/consent/{id}: what the window shows. */
ukey_err api_consent_info(const struct api_request *req, struct api_reply *reply)
{
    struct pending p;
    json_t *list = NULL, *token, *cert, *data = NULL;
    ukey_err e = pending_copy(req->param, &p, 0);
    if (e != UKEY_OK)
        return e;
    if (p.kind == SIGNING_SIGN && !(data = signed_data(&p))) {
        free(p.data);
        return UKEY_ERR_OUT_OF_MEMORY;
    }
    free(p.data);
    tokens_list(&list);
    token = choose(&p, list, &cert);
    reply->json = json_pack("{s:s, s:s, s:o?, s:I, s:o?, s:o?, s:O?}", "kind",
                            p.kind == SIGNING_LOGIN ? "login" : "sign", "origin", p.origin, "sign", data,
                            "expires_in", expires_in(&p), "token",
                            token ? json_pack("{s:O, s:O, s:O}", "id", json_object_get(token, "id"), "type",
                                              json_object_get(token, "type"), "reader",
                                              json_object_get(token, "reader"))
                                  : NULL,
                            "certificate",
                            cert ? json_pack("{s:O, s:O, s:O, s:O, s:O, s:O}", "subject", json_object_get(cert, "subject"),
                                             "subject_cn", json_object_get(cert, "subject_cn"), "issuer",
                                             json_object_get(cert, "issuer"), "serial", json_object_get(cert, "serial"),
                                             "not_before", json_object_get(cert, "not_before"), "not_after",
                                             json_object_get(cert, "not_after"))
                                 : NULL,
                            "pin", token ? json_object_get(token, "pin") : NULL);
    json_decref(list);
    return reply->json ? UKEY_OK : UKEY_ERR_OUT_OF_MEMORY;
}

/* POST /api/v1/consent/{id} {"pin", "confirm_last_attempt"?}: verify the
 * PIN and sign, in one card transaction; a wrong PIN leaves the request
 * pending (the window shows the retries left). */
ukey_err api_consent_submit(const struct api_request *req, struct api_reply *reply)
{
    struct pending p, *live;
    struct signing s = {0};
    struct token_pin pin;
    json_t *answer = NULL, *v;
    const char *key;
    ukey_err e = UKEY_OK;

    json_object_foreach(req->body, key, v) {
        if (strcmp(key, "pin") == 0 && json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
            s.who.pin = json_string_value(v);
        else if (strcmp(key, "confirm_last_attempt") == 0 && json_is_boolean(v))
            s.who.confirm_last_attempt = json_is_true(v);
        else
            e = UKEY_ERR_BAD_REQUEST;
    }
    /* The window sends an empty PIN for a PIN pad: tokens_pin_sign has the reader ask. */
    if (s.who.pin && !*s.who.pin)
        s.who.pin = NULL;
    if (e == UKEY_OK)
        e = pending_copy(req->param, &p, 1);
    if (e == UKEY_OK) {
        const char *algorithm = p.algorithm[0] ? p.algorithm : NULL;
        s.kind = p.kind;
        s.who.token_id = p.token_id[0] ? p.token_id : NULL;
        s.who.cert_id = p.cert_id[0] ? p.cert_id : NULL;
        s.login = (struct login_request){p.origin /* the portal's origin, never this page's */, p.challenge,
                                         algorithm};
        s.sign = (struct sign_request){p.data, p.data_len, p.format, algorithm};
        e = signing_card(&s, &answer, &pin);
        free(p.data);
        if (e != UKEY_OK)
            reply->error_extra = api_pin_error_extra(req, e, &pin, s.who.token_id, s.who.cert_id);
        pthread_mutex_lock(&lock);
        live = find(req->param);
        if (live && live->state == P_SIGNING) {
            live->state = e == UKEY_OK ? P_DONE : P_PENDING;
            live->answer = answer;
            answer = NULL;
        }
        pthread_mutex_unlock(&lock);
        json_decref(answer);
        if (e == UKEY_OK)
            reply->json = json_pack("{s:b}", "done", 1);
    }
    if (s.who.pin)
        secret_wipe((char *)s.who.pin, strlen(s.who.pin));
    return e;
}

/* POST /api/v1/consent/{id}/cancel */
ukey_err api_consent_cancel(const struct api_request *req, struct api_reply *reply)
{
    struct pending *p;
    ukey_err e = UKEY_OK;
    pthread_mutex_lock(&lock);
    p = find(req->param);
    if (!p || p->state == P_DONE || p->state == P_CANCELLED || p->state == P_REPLACED)
        e = UKEY_ERR_CONSENT_NOT_FOUND;
    else if (p->state == P_SIGNING)
        e = UKEY_ERR_TOKEN_BUSY;
    else
        p->state = P_CANCELLED;
    pthread_mutex_unlock(&lock);
    if (e == UKEY_OK)
        reply->json = json_pack("{s:b}", "cancelled", 1);
    return e;
}

void consent_forget(void)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_ENTRIES; i++)
        if (table[i].state != P_FREE)
            release(&table[i]);
    pthread_mutex_unlock(&lock);
}
