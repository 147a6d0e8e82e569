/* The PKCS#11 backend; see pkcs11.h. */
#include "token/pkcs11.h"

#include "token/card.h"
#include "token/vendorlib.h"
#include "util/clock.h"
#include "util/dynlib.h"
#include "util/hex.h"
#include "util/log.h"
#include "x509/cert.h"
#include "x509/sigenc.h"

#include <mbedtls/sha256.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P11_PREFIX "PKCS#11 #"
/* How long a token's own PIN entry (protected authentication path) may hold
 * its module before the module is thought stuck. */
#define P11_ENTRY_S 90
#define P11_MAX_OBJECTS 32

struct p11_module {
    char path[512];
    const char *name;           /* the file name part of path */
    struct dynlib *dl;
    CK_FUNCTION_LIST_PTR f;
    ukey_err err;               /* UKEY_OK when loaded and initialised */
    char detail[192];           /* English: why not */
    char library[96];           /* the module's own description and version */
    /* Every call into the module but C_WaitForSlotEvent is made with its
     * turn taken (vendorlib.h): tokens share their login state between
     * sessions, so operations take turns, and modules are not all safe
     * with concurrent callers (OpenSC 0.23 deadlocks between
     * C_GetTokenInfo and C_GetSlotList from two threads). */
    struct vlib v;
    /* Its watcher is inside C_WaitForSlotEvent (watch.lock), and so, from
     * the watch's stop on, the module is never finalised (left_waiting). */
    int in_wait, left_waiting;
};

/* The open session an operation runs in (card->p11). */
struct p11_session {
    struct p11_module *mod;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE h;
};

/* Set up by p11_load before any thread starts, torn down by p11_unload after
 * they stopped: read without a lock in between. */
static struct p11_module modules[P11_MAX_MODULES];
static size_t n_modules;

static size_t list_module(void *ctx, struct reader_info *out, size_t cap);

/* Names for the return values worth naming in a log line. */
static const char *ckr_name(CK_RV rv)
{
    static const struct { CK_RV rv; const char *name; } names[] = {
        {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"}, {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
        {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"}, {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
        {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"}, {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
        {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"}, {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
        {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"}, {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
        {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"}, {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
        {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"}, {CKR_PIN_INVALID, "CKR_PIN_INVALID"},
        {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"}, {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
        {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"}, {CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED"},
        {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"}, {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
        {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].rv == rv)
            return names[i].name;
    return "CKR_(other)";
}

/* A failed call, logged with its code, as the agent's error. */
static ukey_err ckr_fail(const struct p11_module *m, const char *call, CK_RV rv)
{
    ukey_err e;
    switch (rv) {
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
        e = UKEY_ERR_TOKEN_REMOVED;
        break;
    case CKR_SLOT_ID_INVALID:
        e = UKEY_ERR_TOKEN_NOT_FOUND;
        break;
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_MECHANISM_INVALID:
        e = UKEY_ERR_TOKEN_NOT_SUPPORTED;
        break;
    case CKR_PIN_INCORRECT:
        e = UKEY_ERR_PIN_INCORRECT;
        break;
    case CKR_PIN_LOCKED:
        e = UKEY_ERR_PIN_BLOCKED;
        break;
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_INVALID:
        e = UKEY_ERR_PIN_FORMAT;
        break;
    case CKR_USER_NOT_LOGGED_IN:
        e = UKEY_ERR_PIN_REQUIRED;
        break;
    case CKR_FUNCTION_CANCELED: /* Cancel on the token's own PIN entry */
        e = UKEY_ERR_PIN_PAD_CANCELLED;
        break;
    case CKR_HOST_MEMORY:
        e = UKEY_ERR_OUT_OF_MEMORY;
        break;
    case CKR_SESSION_COUNT:
    case CKR_OPERATION_ACTIVE:
        e = UKEY_ERR_TOKEN_BUSY;
        break;
    default:
        e = UKEY_ERR_CARD_ERROR;
    }
    log_debug("pkcs11: %s: %s: %s (0x%lx)", m->name, call, ckr_name(rv), (unsigned long)rv);
    return e;
}

/* A fixed-width, blank-padded PKCS#11 text field as a C string. */
static void field(char *out, size_t cap, const unsigned char *in, size_t len)
{
    while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\0'))
        len--;
    if (len >= cap)
        len = cap - 1;
    memcpy(out, in, len);
    out[len] = '\0';
}

/* Loading ------------------------------------------------------------------- */

static void load_one(struct p11_module *m)
{
    CK_C_GetFunctionList get;
    CK_C_INITIALIZE_ARGS args;
    CK_INFO info;
    CK_RV rv;
    char desc[33];
    char why[160];

    m->err = UKEY_ERR_MODULE_FAILED;
    if (!(m->dl = dynlib_open(m->path, why, sizeof why))) {
        snprintf(m->detail, sizeof m->detail, "cannot be loaded: %s", why);
        return;
    }
    *(void **)&get = dynlib_sym(m->dl, "C_GetFunctionList");
    if (!get) {
        snprintf(m->detail, sizeof m->detail, "is not a PKCS#11 module (no C_GetFunctionList)");
        return;
    }
    if ((rv = get(&m->f)) != CKR_OK || !m->f || !m->f->C_Initialize) {
        snprintf(m->detail, sizeof m->detail, "C_GetFunctionList failed: %s", ckr_name(rv));
        m->f = NULL;
        return;
    }
    /* Threads of our own call in: let the module use the OS's locks. */
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    rv = m->f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        snprintf(m->detail, sizeof m->detail, "C_Initialize failed: %s (0x%lx)", ckr_name(rv), (unsigned long)rv);
        m->f = NULL;
        return;
    }
    if (m->f->C_GetInfo(&info) == CKR_OK) {
        field(desc, sizeof desc, info.libraryDescription, sizeof info.libraryDescription);
        snprintf(m->library, sizeof m->library, "%s %u.%u", desc, info.libraryVersion.major,
                 info.libraryVersion.minor);
    }
    m->err = UKEY_OK;
}

size_t p11_load(char *const *paths, size_t n)
{
    size_t ok = 0;
    for (size_t i = 0; i < n && n_modules < P11_MAX_MODULES; i++) {
        struct p11_module *m = &modules[n_modules++];
        memset(m, 0, sizeof *m);
        snprintf(m->path, sizeof m->path, "%s", paths[i]);
        m->name = dynlib_file_name(m->path);
        vlib_init(&m->v, "pkcs11", m->name, list_module, m);
        load_one(m);
        if (m->err == UKEY_OK && vlib_start(&m->v) != 0) {
            m->f->C_Finalize(NULL);
            m->err = UKEY_ERR_MODULE_FAILED;
            snprintf(m->detail, sizeof m->detail, "no thread could be started for it");
        }
        if (m->err == UKEY_OK) {
            ok++;
            log_info("pkcs11: %s loaded (%s)", m->path, m->library);
        } else {
            log_warn("pkcs11: %s %s", m->path, m->detail);
        }
    }
    if (n > P11_MAX_MODULES)
        log_warn("pkcs11: only the first %d modules are used", P11_MAX_MODULES);
    return ok;
}

size_t p11_loaded(void)
{
    size_t n = 0;
    for (size_t i = 0; i < n_modules; i++)
        n += modules[i].err == UKEY_OK;
    return n;
}

static void finalize(void *ctx) { ((struct p11_module *)ctx)->f->C_Finalize(NULL); }

static void finalize_all(void)
{
    for (size_t i = 0; i < n_modules; i++)
        if (!modules[i].left_waiting)
            vlib_retire(&modules[i].v, finalize);
}

void p11_unload(void)
{
    if (n_modules == 0)
        return;
    finalize_all();
    for (size_t i = 0; i < n_modules; i++)
        vlib_stop(&modules[i].v);
    /* Modules start threads and register atexit handlers of their own
     * (OpenSC does): unloading the code under them is not safe, so the
     * libraries stay mapped until the process ends. */
    n_modules = 0;
}

json_t *p11_modules_json(void)
{
    json_t *out = json_array();
    for (size_t i = 0; out && i < n_modules; i++) {
        struct p11_module *m = &modules[i];
        json_t *o = vlib_json(&m->v, m->path, m->err == UKEY_OK ? NULL : m->detail);
        if (o && m->err == UKEY_OK && m->library[0])
            json_object_set_new(o, "library", json_string(m->library));
        json_array_append_new(out, o);
    }
    return out;
}

/* Slots ---------------------------------------------------------------------- */

static int module_index(const struct p11_module *m) { return (int)(m - modules) + 1; }

/* "PKCS#11 #<n> <module> slot <id>: <description>" */
static void slot_name(char out[128], const struct p11_module *m, CK_SLOT_ID slot, const char *desc)
{
    snprintf(out, 128, P11_PREFIX "%d %s slot %lu: %.40s", module_index(m), m->name, (unsigned long)slot, desc);
}

int p11_owns(const char *reader) { return strncmp(reader, P11_PREFIX, strlen(P11_PREFIX)) == 0; }

/* The module and slot a name means; -1 if it names none of ours. */
static int parse_name(const char *reader, struct p11_module **mod, CK_SLOT_ID *slot)
{
    const char *p = reader + strlen(P11_PREFIX);
    char *end;
    unsigned long idx, id;
    size_t len;
    if (!p11_owns(reader))
        return -1;
    idx = strtoul(p, &end, 10);
    if (end == p || idx < 1 || idx > n_modules || *end != ' ')
        return -1;
    *mod = &modules[idx - 1];
    len = strlen((*mod)->name);
    p = end + 1;
    if (strncmp(p, (*mod)->name, len) != 0 || strncmp(p + len, " slot ", 6) != 0)
        return -1;
    p += len + 6;
    id = strtoul(p, &end, 10);
    if (end == p || *end != ':' || (*mod)->err != UKEY_OK)
        return -1;
    *slot = id;
    return 0;
}

const char *p11_module_of(const char *reader)
{
    struct p11_module *m;
    CK_SLOT_ID slot;
    return parse_name(reader, &m, &slot) == 0 ? m->path : NULL;
}

/* What tells one token from the next in the same slot. */
static unsigned token_stamp(const CK_TOKEN_INFO *ti)
{
    unsigned h = 2166136261u; /* FNV-1a */
    const unsigned char *parts[] = {ti->label, ti->manufacturerID, ti->model, ti->serialNumber};
    const size_t lens[] = {sizeof ti->label, sizeof ti->manufacturerID, sizeof ti->model, sizeof ti->serialNumber};
    for (size_t p = 0; p < 4; p++)
        for (size_t i = 0; i < lens[p]; i++)
            h = (h ^ parts[p][i]) * 16777619u;
    return h;
}

/* The module's initialised tokens as readers, asked of the module directly
 * (the lister's work). */
static size_t list_module(void *ctx, struct reader_info *out, size_t cap)
{
    struct p11_module *m = ctx;
    CK_SLOT_ID ids[P11_MAX_SLOTS];
    CK_ULONG k = P11_MAX_SLOTS;
    size_t n = 0;
    CK_RV rv = m->f->C_GetSlotList(CK_TRUE, ids, &k);
    if (rv == CKR_BUFFER_TOO_SMALL) {
        k = P11_MAX_SLOTS; /* more than we show: the first ones */
        rv = CKR_OK;
    }
    if (rv != CKR_OK) {
        ckr_fail(m, "C_GetSlotList", rv);
        return 0;
    }
    for (CK_ULONG j = 0; j < k && j < P11_MAX_SLOTS && n < cap; j++) {
        CK_SLOT_INFO si;
        CK_TOKEN_INFO ti;
        char desc[65] = "";
        struct reader_info *r = &out[n];
        int known = m->f->C_GetTokenInfo(ids[j], &ti) == CKR_OK;
        /* SoftHSM and others keep an empty token in a spare slot to be
         * initialised: not a UKey until it is. */
        if (known && !(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        memset(r, 0, sizeof *r);
        if (m->f->C_GetSlotInfo(ids[j], &si) == CKR_OK)
            field(desc, sizeof desc, si.slotDescription, sizeof si.slotDescription);
        slot_name(r->name, m, ids[j], desc);
        r->state = known ? READER_PRESENT : READER_MUTE;
        r->events = known ? token_stamp(&ti) : 0;
        n++;
    }
    return n;
}

/* The module's tokens (vlib_listed), -1 when it is not loaded. */
static long listed(struct p11_module *m, struct reader_info *out, size_t cap)
{
    return m->err == UKEY_OK ? vlib_listed(&m->v, out, cap) : -1;
}

size_t p11_list(struct reader_info *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < n_modules; i++) {
        long k = listed(&modules[i], out + n, cap - n);
        n += k > 0 ? (size_t)k : 0;
    }
    return n;
}

ukey_err p11_with_slot(const char *reader, enum card_end end, ukey_err (*fn)(struct card *card, void *arg),
                       void *arg)
{
    struct p11_session s = {0};
    struct card card = {.p11 = &s};
    ukey_err e;
    CK_RV rv;

    if (parse_name(reader, &s.mod, &s.slot) != 0)
        return UKEY_ERR_TOKEN_NOT_FOUND;
    if (vlib_take(&s.mod->v) != 0)
        return vlib_is_stuck(&s.mod->v) ? UKEY_ERR_MODULE_FAILED : UKEY_ERR_TOKEN_BUSY;
    rv = s.mod->f->C_OpenSession(s.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s.h);
    if (rv == CKR_TOKEN_WRITE_PROTECTED)
        rv = s.mod->f->C_OpenSession(s.slot, CKF_SERIAL_SESSION, NULL, NULL, &s.h);
    if (rv != CKR_OK) {
        e = ckr_fail(s.mod, "C_OpenSession", rv);
        goto out;
    }
    e = fn(&card, arg);
    /* Invariant 5: nobody rides on a verified token after the operation. */
    if (end == CARD_RESET)
        s.mod->f->C_Logout(s.h);
    s.mod->f->C_CloseSession(s.h);
out:
    vlib_give(&s.mod->v);
    return e;
}

/* The driver ------------------------------------------------------------------ */

static ukey_err p11_match(struct card *card) { return card->p11 ? UKEY_OK : UKEY_ERR_TOKEN_NOT_SUPPORTED; }

static ukey_err token_info(struct p11_session *s, CK_TOKEN_INFO *ti)
{
    CK_RV rv = s->mod->f->C_GetTokenInfo(s->slot, ti);
    return rv == CKR_OK ? UKEY_OK : ckr_fail(s->mod, "C_GetTokenInfo", rv);
}

/* "p11-" and a hash of manufacturer, model and serial: the same token in
 * any slot, whichever reader it is plugged into. */
static ukey_err p11_identify(struct card *card, char id[TOKEN_ID_LEN])
{
    CK_TOKEN_INFO ti;
    unsigned char digest[32];
    mbedtls_sha256_context ctx;
    ukey_err e = token_info(card->p11, &ti);
    if (e != UKEY_OK)
        return e;
    mbedtls_sha256_init(&ctx);
    mbedtls_sha256_starts_ret(&ctx, 0);
    mbedtls_sha256_update_ret(&ctx, ti.manufacturerID, sizeof ti.manufacturerID);
    mbedtls_sha256_update_ret(&ctx, ti.model, sizeof ti.model);
    mbedtls_sha256_update_ret(&ctx, ti.serialNumber, sizeof ti.serialNumber);
    mbedtls_sha256_finish_ret(&ctx, digest);
    mbedtls_sha256_free(&ctx);
    memcpy(id, "p11-", 4);
    hex_encode(id + 4, digest, 16, 0);
    return UKEY_OK;
}

/* An attribute's value, malloc'd (NULL if absent or empty). */
static unsigned char *get_attr(struct p11_session *s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, size_t *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    unsigned char *v;
    if (s->mod->f->C_GetAttributeValue(s->h, o, &a, 1) != CKR_OK || a.ulValueLen == 0 ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 65536)
        return NULL;
    if (!(v = malloc(a.ulValueLen)))
        return NULL;
    a.pValue = v;
    if (s->mod->f->C_GetAttributeValue(s->h, o, &a, 1) != CKR_OK) {
        free(v);
        return NULL;
    }
    *len = a.ulValueLen;
    return v;
}

/* Objects of `cls` (and CKA_ID `id` when given). Returns how many. */
static size_t find(struct p11_session *s, CK_OBJECT_CLASS cls, const unsigned char *id, size_t id_len,
                   CK_OBJECT_HANDLE *out, size_t cap)
{
    CK_ATTRIBUTE tmpl[2] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, (void *)id, id_len}};
    CK_ULONG n = 0;
    if (s->mod->f->C_FindObjectsInit(s->h, tmpl, id ? 2 : 1) != CKR_OK)
        return 0;
    if (s->mod->f->C_FindObjects(s->h, out, cap, &n) != CKR_OK)
        n = 0;
    s->mod->f->C_FindObjectsFinal(s->h);
    return n;
}

/* The certificate id the API shows for a key's CKA_ID: its hex when short
 * (softhsm-util's "01"), else "h" and 7 bytes of its SHA-256. */
static void cert_id(char out[TOKEN_CERT_ID_LEN], const unsigned char *id, size_t len)
{
    if (len * 2 < TOKEN_CERT_ID_LEN) {
        hex_encode(out, id, len, 0);
    } else {
        unsigned char digest[32];
        mbedtls_sha256_ret(id, len, digest, 0);
        out[0] = 'h';
        hex_encode(out + 1, digest, (TOKEN_CERT_ID_LEN - 2) / 2, 0);
    }
}

static ukey_err p11_read(struct card *card, struct token *t)
{
    struct p11_session *s = card->p11;
    CK_OBJECT_HANDLE certs[P11_MAX_OBJECTS], keys[1];
    CK_TOKEN_INFO ti;
    size_t n, n_private, auth = (size_t)-1;
    ukey_err e;

    if ((e = p11_identify(card, t->id)) != UKEY_OK || (e = token_info(s, &ti)) != UKEY_OK)
        return e;
    field(t->label, sizeof t->label, ti.label, sizeof ti.label);
    field(t->serial, sizeof t->serial, ti.serialNumber, sizeof ti.serialNumber);
    /* Private keys are often hidden until C_Login: then every end-entity
     * certificate counts, else only those with a key beside them. */
    n_private = find(s, CKO_PRIVATE_KEY, NULL, 0, keys, 1);
    n = find(s, CKO_CERTIFICATE, NULL, 0, certs, P11_MAX_OBJECTS);
    for (size_t i = 0; i < n && t->n_certs < TOKEN_MAX_CERTS; i++) {
        struct token_cert *c = &t->certs[t->n_certs];
        size_t id_len = 0, der_len = 0;
        unsigned char *id = get_attr(s, certs[i], CKA_ID, &id_len);
        unsigned char *der = get_attr(s, certs[i], CKA_VALUE, &der_len);
        int keep = id && der, is_ca = 0, can_sign = 0;
        if (keep && (x509_cert_role(der, der_len, &is_ca, &can_sign) != 0 || is_ca))
            keep = 0; /* not readable, or an authority's certificate stored beside */
        if (keep && n_private > 0 && find(s, CKO_PRIVATE_KEY, id, id_len, keys, 1) == 0 &&
            find(s, CKO_PUBLIC_KEY, id, id_len, keys, 1) == 0)
            keep = 0;
        if (keep) {
            cert_id(c->id, id, id_len);
            c->slot = "PKCS#11";
            c->der = der;
            c->der_len = der_len;
            der = NULL;
            /* The login key: the first that may sign. */
            if (auth == (size_t)-1 && can_sign)
                auth = t->n_certs;
            t->n_certs++;
        }
        free(id);
        free(der);
    }
    if (t->n_certs > 0)
        t->certs[auth == (size_t)-1 ? 0 : auth].auth = 1;
    return UKEY_OK;
}

static ukey_err p11_pin_status(struct card *card, struct token_pin *pin)
{
    CK_TOKEN_INFO ti;
    ukey_err e = token_info(card->p11, &ti);
    if (e != UKEY_OK)
        return e;
    /* PKCS#11 gives no counter, only these flags. */
    pin->blocked = (ti.flags & CKF_USER_PIN_LOCKED) != 0;
    pin->retries_low = (ti.flags & CKF_USER_PIN_COUNT_LOW) != 0;
    pin->retries_left = pin->blocked ? 0 : (ti.flags & CKF_USER_PIN_FINAL_TRY) ? 1 : -1;
    /* The security officer's PIN is the PUK (pin_op's unblock). */
    pin->puk_blocked = (ti.flags & CKF_SO_PIN_LOCKED) != 0;
    pin->puk_retries_low = (ti.flags & CKF_SO_PIN_COUNT_LOW) != 0;
    pin->puk_retries_left = pin->puk_blocked ? 0 : (ti.flags & CKF_SO_PIN_FINAL_TRY) ? 1 : -1;
    pin->puk_untold = 0;
    pin->pin_pad = (ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
    pin->digits_only = 0;
    pin->min_len = ti.ulMinPinLen > 0 && ti.ulMinPinLen <= 64 ? (unsigned)ti.ulMinPinLen : 1;
    pin->max_len = ti.ulMaxPinLen >= pin->min_len && ti.ulMaxPinLen <= 64 ? (unsigned)ti.ulMaxPinLen : 64;
    return UKEY_OK;
}

/* No PIN: the token's protected authentication path, where the user types
 * it on the token and the call lasts as long as that takes. */
static CK_RV login_call(struct p11_session *s, CK_USER_TYPE who, const char *pin)
{
    CK_RV rv;
    if (pin)
        return s->mod->f->C_Login(s->h, who, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    vlib_entry(&s->mod->v, clock_ms() + P11_ENTRY_S * 1000LL);
    rv = s->mod->f->C_Login(s->h, who, NULL, 0);
    vlib_entry(&s->mod->v, 0);
    return rv;
}

static ukey_err login_as(struct p11_session *s, CK_USER_TYPE who, const char *pin)
{
    CK_RV rv = login_call(s, who, pin);
    if (rv == CKR_USER_ALREADY_LOGGED_IN) {
        /* Another program's login: ours must be checked with this PIN. */
        s->mod->f->C_Logout(s->h);
        rv = login_call(s, who, pin);
    }
    return rv == CKR_OK ? UKEY_OK : ckr_fail(s->mod, "C_Login", rv);
}

static ukey_err p11_pin_op(struct card *card, enum token_pin_op op, const char *a, const char *b,
                           struct token_pin *pin)
{
    struct p11_session *s = card->p11;
    ukey_err e;
    CK_RV rv;

    switch (op) {
    case TOKEN_PIN_VERIFY:
        e = login_as(s, CKU_USER, a);
        break;
    case TOKEN_PIN_CHANGE:
        rv = s->mod->f->C_SetPIN(s->h, (CK_UTF8CHAR_PTR)a, strlen(a), (CK_UTF8CHAR_PTR)b, strlen(b));
        e = rv == CKR_OK ? UKEY_OK : ckr_fail(s->mod, "C_SetPIN", rv);
        break;
    case TOKEN_PIN_UNBLOCK:
        /* PKCS#11 has no PUK: the security officer's PIN sets a new user PIN. */
        e = login_as(s, CKU_SO, a);
        if (e == UKEY_ERR_PIN_INCORRECT || e == UKEY_ERR_PIN_BLOCKED) {
            e = e == UKEY_ERR_PIN_INCORRECT ? UKEY_ERR_PUK_INCORRECT : UKEY_ERR_PUK_BLOCKED;
            break;
        }
        if (e == UKEY_OK) {
            rv = s->mod->f->C_InitPIN(s->h, (CK_UTF8CHAR_PTR)b, strlen(b));
            e = rv == CKR_OK ? UKEY_OK : ckr_fail(s->mod, "C_InitPIN", rv);
            s->mod->f->C_Logout(s->h);
        }
        break;
    default:
        return UKEY_ERR_INTERNAL;
    }
    if (e != UKEY_OK)
        p11_pin_status(card, pin);
    return e;
}

/* The private key behind certificate id `want`. */
static ukey_err find_key(struct p11_session *s, const char *want, CK_OBJECT_HANDLE *key)
{
    CK_OBJECT_HANDLE keys[P11_MAX_OBJECTS];
    size_t n = find(s, CKO_PRIVATE_KEY, NULL, 0, keys, P11_MAX_OBJECTS);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        unsigned char *id = get_attr(s, keys[i], CKA_ID, &len);
        char cid[TOKEN_CERT_ID_LEN];
        if (!id)
            continue;
        cert_id(cid, id, len);
        free(id);
        if (strcmp(cid, want) == 0) {
            *key = keys[i];
            return UKEY_OK;
        }
    }
    return n == 0 ? UKEY_ERR_PIN_REQUIRED : UKEY_ERR_CERT_NOT_FOUND;
}

static ukey_err p11_sign(struct card *card, const char *cert_id_str, enum token_key kind, int pss,
                         const unsigned char *digest, size_t digest_len, unsigned char *out, size_t *out_len)
{
    struct p11_session *s = card->p11;
    int sha384 = digest_len == 48;
    CK_RSA_PKCS_PSS_PARAMS pss_params = {sha384 ? CKM_SHA384 : CKM_SHA256, sha384 ? CKG_MGF1_SHA384 : CKG_MGF1_SHA256,
                                         digest_len};
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char in[SIGENC_DIGEST_INFO_MAX], raw[512];
    CK_ULONG in_len = digest_len, raw_len = sizeof raw;
    CK_OBJECT_HANDLE key;
    ukey_err e;
    CK_RV rv;

    if (digest_len != 32 && digest_len != 48)
        return UKEY_ERR_INTERNAL;
    if ((e = find_key(s, cert_id_str, &key)) != UKEY_OK)
        return e;
    memcpy(in, digest, digest_len);
    if (kind == TOKEN_KEY_RSA2048 && pss) {
        mech = (CK_MECHANISM){CKM_RSA_PKCS_PSS, &pss_params, sizeof pss_params};
    } else if (kind == TOKEN_KEY_RSA2048) {
        /* The module pads PKCS#1 v1.5 itself: it signs the DigestInfo. */
        mech = (CK_MECHANISM){CKM_RSA_PKCS, NULL, 0};
        in_len = sigenc_digest_info(sha384 ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA256, digest, in);
    }
    if ((rv = s->mod->f->C_SignInit(s->h, &mech, key)) != CKR_OK)
        return ckr_fail(s->mod, "C_SignInit", rv);
    if ((rv = s->mod->f->C_Sign(s->h, in, in_len, raw, &raw_len)) != CKR_OK)
        return ckr_fail(s->mod, "C_Sign", rv);
    if (kind == TOKEN_KEY_RSA2048) {
        if (raw_len > *out_len)
            return UKEY_ERR_CARD_DATA_INVALID;
        memcpy(out, raw, raw_len);
        *out_len = raw_len;
        return UKEY_OK;
    }
    /* CKM_ECDSA answers r||s; the driver table speaks DER. */
    {
        int n = raw_len % 2 == 0 && raw_len <= 2 * 66 ? sigenc_ecdsa_raw_to_der(raw, raw_len / 2, out, *out_len) : -1;
        if (n < 0)
            return UKEY_ERR_CARD_DATA_INVALID;
        *out_len = (size_t)n;
    }
    return UKEY_OK;
}

static void p11_logout(struct card *card) { card->p11->mod->f->C_Logout(card->p11->h); }

const struct token_driver pkcs11_driver = {
    .name = "PKCS#11",
    .match = p11_match,
    .identify = p11_identify,
    .read = p11_read,
    .pin_status = p11_pin_status,
    .pin_op = p11_pin_op,
    .sign = p11_sign,
    .logout = p11_logout,
};

/* Slot events ----------------------------------------------------------------- */

static struct vlib_watch watch;

static void *monitor_main(void *arg)
{
    struct p11_module *m = arg;
    struct vlib_seen seen = {.n = 0};
    int blocking = m->f->C_WaitForSlotEvent != NULL;

    vlib_compare(&m->v, &watch, &seen, 0); /* what is there at start is not news */
    while (blocking) {
        CK_SLOT_ID slot;
        CK_RV rv;
        int stop;
        /* In the wait or not, as p11_monitor_stop sees it: never both. */
        pthread_mutex_lock(&watch.lock);
        m->in_wait = !(stop = watch.stopping);
        pthread_mutex_unlock(&watch.lock);
        if (stop)
            return NULL;
        rv = m->f->C_WaitForSlotEvent(0, &slot, NULL);
        pthread_mutex_lock(&watch.lock);
        m->in_wait = 0;
        stop = watch.stopping;
        pthread_mutex_unlock(&watch.lock);
        if (stop)
            return NULL;
        if (rv == CKR_OK) {
            vlib_compare(&m->v, &watch, &seen, 1);
            continue;
        }
        /* Not supported (SoftHSM), or broken: poll instead. */
        log_debug("pkcs11: %s: C_WaitForSlotEvent: %s: polling", m->name, ckr_name(rv));
        blocking = 0;
    }
    vlib_poll(&m->v, &watch, &seen);
    return NULL;
}

int p11_monitor_start(void (*cb)(enum pcsc_event ev, const char *reader, void *arg), void *arg)
{
    vlib_watch_init(&watch, cb, arg);
    for (size_t i = 0; i < n_modules; i++)
        if (modules[i].err == UKEY_OK && vlib_watcher_start(&modules[i].v, monitor_main, &modules[i]) != 0)
            return -1;
    return 0;
}

void p11_monitor_stop(void)
{
    if (n_modules == 0)
        return;
    vlib_watch_stop(&watch);
    /* A watcher in C_WaitForSlotEvent would return when its module is
     * finalised (PKCS#11 2.40, 5.4), but OpenSC 0.23's C_Finalize frees its
     * reader list while the wait it wakes still reads it (a use after free
     * that ASan caught at shutdown). So a module whose watcher waits is not
     * finalised: the agent is ending, the wait stays blocked until the
     * process is gone, and pcscd frees what it held then. */
    pthread_mutex_lock(&watch.lock);
    for (size_t i = 0; i < n_modules; i++)
        modules[i].left_waiting = modules[i].in_wait;
    pthread_mutex_unlock(&watch.lock);
    finalize_all();
    for (size_t i = 0; i < n_modules; i++)
        if (!modules[i].left_waiting)
            vlib_watcher_join(&modules[i].v);
}
