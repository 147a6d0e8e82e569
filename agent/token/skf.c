/* The SKF backend: libraries, devices, events; see skf.h. The driver
 * table (what runs on one device) is skf_driver.c. */
#include "token/skf_int.h"

#include "token/card.h"
#include "util/clock.h"
#include "util/dynlib.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SKF_PREFIX "SKF #"
/* A blocking event wait that keeps returning at once is broken: so many
 * returns in a row within this many ms, and the library is polled. */
#define SKF_EVENT_SPIN 10
#define SKF_EVENT_SPIN_MS 50

/* Set up by skf_load before any thread starts, torn down by skf_unload
 * after they stopped: read without a lock in between. */
static struct skf_lib libs[SKF_MAX_LIBS];
static size_t n_libs;

/* SAR_* codes (GM/T 0016 Appendix A) ----------------------------------------- */

static const struct {
    skf_rv rv;
    const char *name;
    ukey_err err;
} sar_table[] = {
    {0x0A000001, "SAR_FAIL", UKEY_ERR_CARD_ERROR},
    {0x0A000002, "SAR_UNKNOWNERR", UKEY_ERR_CARD_ERROR},
    {0x0A000003, "SAR_NOTSUPPORTYETERR", UKEY_ERR_TOKEN_NOT_SUPPORTED},
    {0x0A000005, "SAR_INVALIDHANDLEERR", UKEY_ERR_CARD_ERROR},
    {0x0A000006, "SAR_INVALIDPARAMERR", UKEY_ERR_CARD_ERROR},
    {0x0A00000A, "SAR_KEYUSAGEERR", UKEY_ERR_TOKEN_NOT_SUPPORTED},
    {0x0A00000C, "SAR_NOTINITIALIZEERR", UKEY_ERR_CARD_ERROR},
    {0x0A00000E, "SAR_MEMORYERR", UKEY_ERR_CARD_ERROR},
    {0x0A00000F, "SAR_TIMEOUTERR", UKEY_ERR_TOKEN_BUSY},
    {0x0A000010, "SAR_INDATALENERR", UKEY_ERR_CARD_ERROR},
    {0x0A000011, "SAR_INDATAERR", UKEY_ERR_CARD_ERROR},
    {SAR_KEYNOTFOUNTERR, "SAR_KEYNOTFOUNTERR", UKEY_ERR_CERT_NOT_FOUND},
    {SAR_CERTNOTFOUNTERR, "SAR_CERTNOTFOUNTERR", UKEY_ERR_CERT_NOT_FOUND},
    {0x0A000020, "SAR_BUFFER_TOO_SMALL", UKEY_ERR_CARD_DATA_INVALID},
    {0x0A000023, "SAR_DEVICE_REMOVED", UKEY_ERR_TOKEN_REMOVED},
    {SAR_PIN_INCORRECT, "SAR_PIN_INCORRECT", UKEY_ERR_PIN_INCORRECT},
    {SAR_PIN_LOCKED, "SAR_PIN_LOCKED", UKEY_ERR_PIN_BLOCKED},
    {0x0A000026, "SAR_PIN_INVALID", UKEY_ERR_PIN_FORMAT},
    {0x0A000027, "SAR_PIN_LEN_RANGE", UKEY_ERR_PIN_FORMAT},
    {0x0A00002D, "SAR_USER_NOT_LOGGED_IN", UKEY_ERR_CARD_ERROR},
    {0x0A00002E, "SAR_APPLICATION_NOT_EXISTS", UKEY_ERR_TOKEN_NOT_SUPPORTED},
};

ukey_err skf_fail(const struct skf_lib *l, const char *call, skf_rv rv)
{
    const char *name = "SAR_(other)";
    ukey_err e = UKEY_ERR_CARD_ERROR;
    for (size_t i = 0; i < sizeof sar_table / sizeof sar_table[0]; i++) {
        if (sar_table[i].rv == rv) {
            name = sar_table[i].name;
            e = sar_table[i].err;
            break;
        }
    }
    log_debug("skf: %s: %s: %s (0x%08x)", l->name, call, name, (unsigned)rv);
    return e;
}

/* Loading ------------------------------------------------------------------- */

/* The table's entries by name; NULL-terminated at the first optional one. */
#define FN(x) {"SKF_" #x, (void **)&f->x}

static void load_one(struct skf_lib *l)
{
    struct skf_fns *f = &l->f;
    const struct { const char *name; void **slot; } fns[] = {
        FN(EnumDev), FN(ConnectDev), FN(DisConnectDev), FN(GetDevInfo), FN(EnumApplication), FN(OpenApplication),
        FN(CloseApplication), FN(GetPINInfo), FN(VerifyPIN), FN(ChangePIN), FN(UnblockPIN), FN(ClearSecureState),
        FN(EnumContainer), FN(OpenContainer), FN(CloseContainer), FN(ExportCertificate), FN(ExportPublicKey),
        FN(ECCSignData), FN(RSASignData), {NULL, NULL}, FN(WaitForDevEvent), FN(CancelWaitForDevEvent),
    };
    int optional = 0;
    char why[160];

    l->err = UKEY_ERR_MODULE_FAILED;
    if (!(l->dl = dynlib_open(l->path, why, sizeof why))) {
        snprintf(l->detail, sizeof l->detail, "cannot be loaded: %s", why);
        return;
    }
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        if (!fns[i].name) {
            optional = 1;
            continue;
        }
        *fns[i].slot = dynlib_sym(l->dl, fns[i].name);
        if (!*fns[i].slot && !optional) {
            snprintf(l->detail, sizeof l->detail, i == 0 ? "is not an SKF library (no %s)" : "lacks %s",
                     fns[i].name);
            return;
        }
    }
    /* Waiting needs its cancel, or the agent could not stop. */
    if (!f->CancelWaitForDevEvent)
        f->WaitForDevEvent = NULL;
    l->err = UKEY_OK;
}

#undef FN

static size_t list_lib(void *ctx, struct reader_info *out, size_t cap);

size_t skf_load(char *const *paths, size_t n)
{
    size_t ok = 0;
    for (size_t i = 0; i < n && n_libs < SKF_MAX_LIBS; i++) {
        struct skf_lib *l = &libs[n_libs++];
        memset(l, 0, sizeof *l);
        snprintf(l->path, sizeof l->path, "%s", paths[i]);
        l->name = dynlib_file_name(l->path);
        vlib_init(&l->v, "skf", l->name, list_lib, l);
        load_one(l);
        if (l->err == UKEY_OK && vlib_start(&l->v) != 0) {
            l->err = UKEY_ERR_MODULE_FAILED;
            snprintf(l->detail, sizeof l->detail, "no thread could be started for it");
        }
        if (l->err == UKEY_OK) {
            ok++;
            log_info("skf: %s loaded%s", l->path, l->f.WaitForDevEvent ? "" : " (no device events: polled)");
        } else {
            log_warn("skf: %s %s", l->path, l->detail);
        }
    }
    if (n > SKF_MAX_LIBS)
        log_warn("skf: only the first %d libraries are used", SKF_MAX_LIBS);
    return ok;
}

size_t skf_loaded(void)
{
    size_t n = 0;
    for (size_t i = 0; i < n_libs; i++)
        n += libs[i].err == UKEY_OK;
    return n;
}

/* SKF has no finalisation: retiring a library only ends its turns. */
static void retire_all(void)
{
    for (size_t i = 0; i < n_libs; i++)
        if (libs[i].err == UKEY_OK)
            vlib_retire(&libs[i].v, NULL);
}

void skf_unload(void)
{
    if (n_libs == 0)
        return;
    retire_all();
    for (size_t i = 0; i < n_libs; i++)
        vlib_stop(&libs[i].v);
    /* Vendor libraries start threads of their own: they stay mapped until
     * the process ends, as PKCS#11 modules do. */
    n_libs = 0;
}

json_t *skf_modules_json(void)
{
    json_t *out = json_array();
    for (size_t i = 0; out && i < n_libs; i++) {
        struct skf_lib *l = &libs[i];
        int abi = atomic_load(&l->abi);
        json_t *o = vlib_json(&l->v, l->path, l->err == UKEY_OK ? NULL : l->detail);
        if (o)
            json_object_set_new(o, "abi", abi ? json_string(abi == 4 ? "ulong32" : "ulong64") : json_null());
        if (o && l->err == UKEY_OK)
            json_object_set_new(o, "events", json_string(l->f.WaitForDevEvent ? "wait" : "poll"));
        json_array_append_new(out, o);
    }
    return out;
}

/* Name lists and outputs of variable length ---------------------------------- */

/* Any of the SKF_Enum* calls: size first, then the list (research 1.7). */
static skf_rv enum_names(const struct skf_lib *l, skf_rv (*fn)(void *h, char *names, skf_ulong *size),
                         const char *call, void *h, char names[SKFW_MAX_NAMES][SKFW_NAME_MAX], size_t *n)
{
    skf_ulong size = 0, cap;
    char *buf;
    long got;
    skf_rv rv = fn(h, NULL, &size);
    *n = 0;
    if (rv != SAR_OK || size <= 1)
        return rv; /* <= 1: an empty list */
    if (size > SKFW_LIST_MAX) {
        log_warn("skf: %s: %s: a name list of %llu bytes is not believed", l->name, call, (unsigned long long)size);
        return SAR_OK;
    }
    cap = size;
    if (!(buf = calloc(1, (size_t)size + 2)))
        return SAR_OK; /* nothing listed: the caller sees no names */
    rv = fn(h, buf, &size);
    got = rv != SAR_OK ? 0 : size > cap ? -1 : skfw_names(buf, (size_t)size, names);
    if (got < 0)
        log_warn("skf: %s: %s: a name list that does not end where the library said", l->name, call);
    *n = got > 0 ? (size_t)got : 0;
    free(buf);
    return rv;
}

/* EnumDev's first argument is a BOOL, not a handle: TRUE, present only. */
static skf_rv enum_dev(void *h, char *names, skf_ulong *size)
{
    return ((struct skf_lib *)h)->f.EnumDev(1, names, size);
}

size_t skf_containers(struct skf_session *s, char names[SKFW_MAX_NAMES][SKFW_NAME_MAX])
{
    size_t n;
    skf_rv rv = enum_names(s->lib, s->lib->f.EnumContainer, "SKF_EnumContainer", s->app, names, &n);
    if (rv != SAR_OK)
        skf_fail(s->lib, "SKF_EnumContainer", rv);
    return n;
}

ukey_err skf_open_container(struct skf_session *s, const char *name, void **con)
{
    skf_rv rv;
    *con = NULL;
    rv = s->lib->f.OpenContainer(s->app, name, con);
    if (rv == SAR_OK && !*con)
        return UKEY_ERR_CARD_DATA_INVALID;
    return rv == SAR_OK ? UKEY_OK : skf_fail(s->lib, "SKF_OpenContainer", rv);
}

ukey_err skf_export(struct skf_session *s, void *con, int cert, int sign, unsigned char **out, size_t *len)
{
    skf_rv (*fn)(void *, skf_ulong, unsigned char *, skf_ulong *) =
        cert ? s->lib->f.ExportCertificate : s->lib->f.ExportPublicKey;
    const char *call = cert ? "SKF_ExportCertificate" : "SKF_ExportPublicKey";
    skf_ulong size = 0, cap;
    unsigned char *buf;
    skf_rv rv;

    *out = NULL;
    *len = 0;
    rv = fn(con, (skf_ulong)sign, NULL, &size);
    if (rv == SAR_CERTNOTFOUNTERR || rv == SAR_KEYNOTFOUNTERR || (rv == SAR_OK && size == 0))
        return UKEY_OK; /* none */
    if (rv != SAR_OK)
        return skf_fail(s->lib, call, rv);
    if (size > SKFW_LIST_MAX)
        return UKEY_ERR_CARD_DATA_INVALID;
    /* A library that writes more than it announced hits zeroes, not our heap. */
    cap = size;
    if (!(buf = calloc(1, (size_t)size + 16)))
        return UKEY_ERR_OUT_OF_MEMORY;
    rv = fn(con, (skf_ulong)sign, buf, &size);
    if (rv != SAR_OK || size == 0 || size > cap) {
        free(buf);
        return rv != SAR_OK ? skf_fail(s->lib, call, rv) : UKEY_ERR_CARD_DATA_INVALID;
    }
    *out = buf;
    *len = (size_t)size;
    return UKEY_OK;
}

int skf_probe(struct skf_lib *l, void *con)
{
    skf_ulong len = 0;
    int abi = atomic_load(&l->abi);
    if (abi)
        return abi;
    /* research 1.2: the size of the signing key's blob, asked with an
     * 8-byte zeroed length, is 132/268 for a 4-byte ULONG, 136/276 for 8. */
    if (l->f.ExportPublicKey(con, 1, NULL, &len) != SAR_OK || !(abi = skfw_abi(len)))
        return 0;
    atomic_store(&l->abi, abi);
    log_info("skf: %s: ULONG is %d bits", l->name, abi * 8);
    return abi;
}

/* Devices --------------------------------------------------------------------- */

static int lib_index(const struct skf_lib *l) { return (int)(l - libs) + 1; }

int skf_owns(const char *reader) { return strncmp(reader, SKF_PREFIX, strlen(SKF_PREFIX)) == 0; }

/* "SKF #<n> <library> device <name>"; -1 when it does not fit. */
static int device_name(char out[128], const struct skf_lib *l, const char *dev)
{
    int k = snprintf(out, 128, SKF_PREFIX "%d %s device %s", lib_index(l), l->name, dev);
    return k > 0 && k < 128 ? 0 : -1;
}

/* The library and device a name means; -1 if it names none of ours. */
static int parse_name(const char *reader, struct skf_lib **lib, const char **dev)
{
    const char *p = reader + strlen(SKF_PREFIX);
    char *end;
    unsigned long idx;
    size_t len;
    if (!skf_owns(reader))
        return -1;
    idx = strtoul(p, &end, 10);
    if (end == p || idx < 1 || idx > n_libs || *end != ' ')
        return -1;
    *lib = &libs[idx - 1];
    len = strlen((*lib)->name);
    p = end + 1;
    if (strncmp(p, (*lib)->name, len) != 0 || strncmp(p + len, " device ", 8) != 0 || (*lib)->err != UKEY_OK)
        return -1;
    *dev = p + len + 8;
    return **dev ? 0 : -1;
}

const char *skf_module_of(const char *reader)
{
    struct skf_lib *l;
    const char *dev;
    return parse_name(reader, &l, &dev) == 0 ? l->path : NULL;
}

/* Opens the device's application: the first one it lists (a CA's UKey
 * holds one, e.g. BJCA's "BJCA-Application"). */
static ukey_err open_app(struct skf_session *s)
{
    char names[SKFW_MAX_NAMES][SKFW_NAME_MAX];
    size_t n;
    skf_rv rv = enum_names(s->lib, s->lib->f.EnumApplication, "SKF_EnumApplication", s->dev, names, &n);
    if (rv != SAR_OK)
        return skf_fail(s->lib, "SKF_EnumApplication", rv);
    if (n == 0)
        return UKEY_ERR_TOKEN_NOT_SUPPORTED;
    s->app = NULL;
    rv = s->lib->f.OpenApplication(s->dev, names[0], &s->app);
    if (rv == SAR_OK && !s->app)
        return UKEY_ERR_CARD_DATA_INVALID;
    return rv == SAR_OK ? UKEY_OK : skf_fail(s->lib, "SKF_OpenApplication", rv);
}

/* Connects to `dev` and opens its application; on failure nothing stays open. */
static ukey_err session_open(struct skf_session *s, const char *dev)
{
    ukey_err e;
    skf_rv rv;
    s->dev = s->app = NULL;
    rv = s->lib->f.ConnectDev(dev, &s->dev);
    if (rv != SAR_OK || !s->dev)
        return rv != SAR_OK ? skf_fail(s->lib, "SKF_ConnectDev", rv) : UKEY_ERR_CARD_DATA_INVALID;
    if ((e = open_app(s)) != UKEY_OK) {
        s->lib->f.DisConnectDev(s->dev);
        s->dev = NULL;
    }
    return e;
}

static void session_close(struct skf_session *s)
{
    s->lib->f.CloseApplication(s->app);
    s->lib->f.DisConnectDev(s->dev);
}

/* What tells one device from the next under the same name: its DEVINFO
 * strings; 0 when it cannot be described. Probes the ULONG width while
 * it is unknown. */
static unsigned device_stamp(struct skf_lib *l, const char *dev)
{
    struct skf_session s = {l, NULL, NULL};
    unsigned char info[1024];
    struct skfw_devinfo di;
    unsigned h = 2166136261u; /* FNV-1a */
    const char *parts[4];
    if (session_open(&s, dev) != UKEY_OK)
        return 0;
    /* research 1.2: a zeroed 1 KiB, whatever DEVINFO size the library has. */
    memset(info, 0, sizeof info);
    if (l->f.GetDevInfo(s.dev, info) == SAR_OK && skfw_devinfo(info, sizeof info, &di) == 0) {
        parts[0] = di.manufacturer, parts[1] = di.issuer, parts[2] = di.label, parts[3] = di.serial;
        for (size_t p = 0; p < 4; p++)
            for (const char *c = parts[p]; *c; c++)
                h = (h ^ (unsigned char)*c) * 16777619u;
    } else {
        h = 0;
    }
    if (h && !atomic_load(&l->abi)) {
        char names[SKFW_MAX_NAMES][SKFW_NAME_MAX];
        size_t n = skf_containers(&s, names);
        for (size_t i = 0; i < n && !atomic_load(&l->abi); i++) {
            void *con;
            if (skf_open_container(&s, names[i], &con) == UKEY_OK) {
                skf_probe(l, con);
                l->f.CloseContainer(con);
            }
        }
    }
    session_close(&s);
    return h;
}

/* The library's present devices as readers (the lister's work). */
static size_t list_lib(void *ctx, struct reader_info *out, size_t cap)
{
    struct skf_lib *l = ctx;
    char names[SKFW_MAX_NAMES][SKFW_NAME_MAX];
    size_t n, k = 0;
    skf_rv rv = enum_names(l, enum_dev, "SKF_EnumDev", l, names, &n);
    if (rv != SAR_OK) {
        skf_fail(l, "SKF_EnumDev", rv);
        return 0;
    }
    for (size_t i = 0; i < n && k < cap; i++) {
        struct reader_info *r = &out[k];
        memset(r, 0, sizeof *r);
        if (device_name(r->name, l, names[i]) != 0)
            continue;
        r->events = device_stamp(l, names[i]);
        r->state = r->events ? READER_PRESENT : READER_MUTE;
        k++;
    }
    return k;
}

size_t skf_list(struct reader_info *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < n_libs; i++) {
        long k = libs[i].err == UKEY_OK ? vlib_listed(&libs[i].v, out + n, cap - n) : -1;
        n += k > 0 ? (size_t)k : 0;
    }
    return n;
}

ukey_err skf_with_device(const char *reader, enum card_end end, ukey_err (*fn)(struct card *card, void *arg),
                         void *arg)
{
    struct skf_session s = {0};
    struct card card = {.skf = &s};
    const char *dev;
    ukey_err e;

    if (parse_name(reader, &s.lib, &dev) != 0)
        return UKEY_ERR_TOKEN_NOT_FOUND;
    if (vlib_take(&s.lib->v) != 0)
        return vlib_is_stuck(&s.lib->v) ? UKEY_ERR_MODULE_FAILED : UKEY_ERR_TOKEN_BUSY;
    if ((e = session_open(&s, dev)) == UKEY_OK) {
        e = fn(&card, arg);
        /* Invariant 5: nobody rides on a verified device after the operation. */
        if (end == CARD_RESET)
            s.lib->f.ClearSecureState(s.app);
        session_close(&s);
    }
    vlib_give(&s.lib->v);
    return e;
}

/* Device events ----------------------------------------------------------------- */

static struct vlib_watch watch;

static void *monitor_main(void *arg)
{
    struct skf_lib *l = arg;
    struct vlib_seen seen = {.n = 0};
    int blocking = l->f.WaitForDevEvent != NULL, spins = 0;

    vlib_compare(&l->v, &watch, &seen, 0); /* what is there at start is not news */
    while (blocking && !vlib_watch_stopping(&watch)) {
        char name[256];
        skf_ulong len = sizeof name - 2, event = 0;
        long long started = clock_ms();
        skf_rv rv;
        memset(name, 0, sizeof name);
        /* GM/T 0016 7.1.2: blocks until a device comes (1) or goes (2). */
        rv = l->f.WaitForDevEvent(name, &len, &event);
        if (vlib_watch_stopping(&watch))
            return NULL;
        spins = clock_ms() - started < SKF_EVENT_SPIN_MS ? spins + 1 : 0;
        if (rv == SAR_OK && spins < SKF_EVENT_SPIN) {
            /* The name it gives is the library's, not ours: look again. */
            vlib_compare(&l->v, &watch, &seen, 1);
            continue;
        }
        if (rv != SAR_OK)
            skf_fail(l, "SKF_WaitForDevEvent", rv);
        log_debug("skf: %s: SKF_WaitForDevEvent: %s: polling", l->name,
                  rv != SAR_OK ? "failed" : "returns without waiting");
        blocking = 0;
    }
    vlib_poll(&l->v, &watch, &seen);
    return NULL;
}

int skf_monitor_start(void (*cb)(enum pcsc_event ev, const char *reader, void *arg), void *arg)
{
    vlib_watch_init(&watch, cb, arg);
    for (size_t i = 0; i < n_libs; i++)
        if (libs[i].err == UKEY_OK && vlib_watcher_start(&libs[i].v, monitor_main, &libs[i]) != 0)
            return -1;
    return 0;
}

void skf_monitor_stop(void)
{
    if (n_libs == 0)
        return;
    vlib_watch_stop(&watch);
    for (size_t i = 0; i < n_libs; i++) {
        struct skf_lib *l = &libs[i];
        /* GM/T 0016 7.1.3: ends a wait in SKF_WaitForDevEvent. Called
         * without the turn: the wait does not hold it. */
        if (l->v.watching && l->f.CancelWaitForDevEvent)
            l->f.CancelWaitForDevEvent();
        vlib_watcher_join(&l->v);
    }
    retire_all();
}
