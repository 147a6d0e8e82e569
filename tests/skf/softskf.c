/*
 * softskf: a soft GM/T 0016 (SKF) token library for the tests and the demo
 * of the agent's SKF backend (agent/token/skf.c). It exports the SKF
 * functions a login client needs over a JSON state file named by
 * $SOFTSKF_STATE (format and faults: tests/skf/README.md), with the keys and
 * certificates in PEM or DER files beside it. Keys and signatures are
 * OpenSSL libcrypto 3.0's; JSON is Jansson's.
 *
 * Built twice from this file (tests/CMakeLists.txt): softskf.so with the
 * spec ABI (32-bit ULONG) and softskf64.so with SOFTSKF_ULONG64 (the LP64
 * vendor ABI), so the agent's ABI probe can be tested against both.
 *
 * The state is re-read on every call, because tests edit it between calls
 * (insert or remove a device, inject a fault); PIN counters are written back
 * at once and atomically, so a reload never resets them. One mutex guards
 * everything: the agent waits for device events on one thread and calls the
 * rest on another.
 */
#ifdef _WIN32
/* softskf.dll. <windows.h> would clash with skf.h's types (its ULONG is
 * unsigned long), so the one call it needs is declared here: rename()
 * does not replace an existing file on Windows. */
#define SKF_EXPORT __declspec(dllexport)
__declspec(dllimport) int __stdcall MoveFileExA(const char *from, const char *to, unsigned long flags);
static int replace_file(const char *from, const char *to)
{
    return MoveFileExA(from, to, 1 /* MOVEFILE_REPLACE_EXISTING */) ? 0 : -1;
}
#define O_CLOEXEC O_BINARY
#else
#define SKF_EXPORT __attribute__((visibility("default")))
#define replace_file rename
#endif
#include "skf.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 50
#define BAD_LIST_CLAIM (1024 * 1024) /* what a bad_name_list size query claims */

/* ---- handles ------------------------------------------------------------
 * A handle is a pointer to one of these. Closed ones stay on the list, marked,
 * until the library is unloaded: a closed handle then answers
 * SAR_INVALIDHANDLEERR and its address is never handed out again. */
enum kind { OBJ_DEV = 1, OBJ_APP, OBJ_CON };

struct obj {
    enum kind kind;
    int closed;
    int removed;  /* device: seen absent since ConnectDev; the handle stays dead */
    int locked;   /* device: holds SKF_LockDev */
    int user_in;  /* application: user PIN verified */
    int admin_in; /* application: admin PIN verified */
    struct obj *parent;
    struct obj *next;
    char name[256];
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER; /* wakes waits: Cancel, UnlockDev */
static struct obj *g_objs;
static json_t *g_seen;          /* device name -> present, as WaitForDevEvent last reported */
static unsigned g_cancel_gen;   /* bumped by SKF_CancelWaitForDevEvent */
static int g_cancel_pending;    /* a Cancel with no wait in progress: ends the next one */
static int g_waiters;
static int g_warned;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* One message per process: a test without a state file should say why it
 * sees no devices, but not a thousand times. */
static void warn_once(const char *a, const char *b, const char *c)
{
    if (g_warned)
        return;
    g_warned = 1;
    fprintf(stderr, "softskf: %s%s%s\n", a, b, c);
}

/* ---- files -------------------------------------------------------------- */

/* The whole file in a fresh buffer (NUL-terminated, not counted in *len).
 * Callers OPENSSL_cleanse it: it may hold PINs or a private key. */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            unsigned char *nb = malloc(ncap);
            if (!nb)
                break;
            if (buf) {
                memcpy(nb, buf, n);
                OPENSSL_cleanse(buf, cap);
                free(buf);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f) || !buf;
    fclose(f);
    if (bad) {
        if (buf) {
            OPENSSL_cleanse(buf, cap);
            free(buf);
        }
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static void free_file(unsigned char *buf, size_t len)
{
    if (buf) {
        OPENSSL_cleanse(buf, len);
        free(buf);
    }
}

/* A path from the state file: absolute, or relative to the state file's
 * directory. Caller frees. */
static char *resolve_path(const char *rel)
{
    const char *state = getenv("SOFTSKF_STATE");
    if (!rel || !*rel)
        return NULL;
    if (rel[0] == '/' || !state || !strchr(state, '/'))
        return strdup(rel);
    size_t dirlen = (size_t)(strrchr(state, '/') - state);
    size_t need = dirlen + 1 + strlen(rel) + 1;
    char *out = malloc(need);
    if (out)
        snprintf(out, need, "%.*s/%s", (int)dirlen, state, rel);
    return out;
}

/* ---- the state file ----------------------------------------------------- */

/* Overwrites the PINs in a loaded state before it is freed. */
static void scrub_state(json_t *st)
{
    json_t *dev, *app;
    size_t i, j;
    json_array_foreach(json_object_get(st, "devices"), i, dev) {
        json_array_foreach(json_object_get(dev, "applications"), j, app) {
            static const char *const secret[] = {"pin", "admin_pin"};
            for (size_t k = 0; k < 2; k++) {
                json_t *v = json_object_get(app, secret[k]);
                if (json_is_string(v))
                    OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
            }
        }
    }
}

static void drop_state(json_t *st)
{
    if (st) {
        scrub_state(st);
        json_decref(st);
    }
}

/* The state, or NULL (and one message on stderr per process). A file that
 * does not parse is read again a few times: a test may be rewriting it in
 * place rather than renaming a new one over it. */
static json_t *load_state(void)
{
    const char *path = getenv("SOFTSKF_STATE");
    json_error_t err;
    if (!path || !*path) {
        warn_once("SOFTSKF_STATE is not set", "", ": no devices");
        return NULL;
    }
    for (int attempt = 0; attempt < 10; attempt++) {
        size_t len = 0;
        unsigned char *buf = read_file(path, &len);
        if (!buf) {
            warn_once(path, ": ", strerror(errno));
            return NULL;
        }
        json_t *st = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &err);
        free_file(buf, len);
        if (st && json_is_array(json_object_get(st, "devices")))
            return st;
        if (st)
            snprintf(err.text, sizeof err.text, "%s", "no \"devices\" array");
        drop_state(st);
        sleep_ms(10);
    }
    warn_once(path, ": not a softskf state file: ", err.text);
    return NULL;
}

/* Writes the state back: temp file + rename, so a reader never sees half. */
static int save_state(json_t *st)
{
    const char *path = getenv("SOFTSKF_STATE");
    char *text = json_dumps(st, JSON_INDENT(2));
    char tmp[4096];
    int rc = -1;
    if (!text || !path || snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        goto out;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (close(fd) == 0 && off == len && replace_file(tmp, path) == 0)
        rc = 0;
    else
        unlink(tmp);
out:
    if (rc != 0)
        fprintf(stderr, "softskf: cannot write %s\n", path ? path : "(no SOFTSKF_STATE)");
    if (text) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    return rc;
}

static json_t *faults(json_t *st)
{
    return json_object_get(st, "faults");
}

static int fault_on(json_t *st, const char *name)
{
    return json_is_true(json_object_get(faults(st), name));
}

static int hanging(json_t *st, const char *fn)
{
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(faults(st), "hang"), i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), fn) == 0)
            return 1;
    return 0;
}

/* Every entry point: take the lock and load the state; a function listed in
 * faults.hang waits (without the lock, so the other threads go on) until it is
 * taken off the list. */
static json_t *enter(const char *fn)
{
    pthread_mutex_lock(&g_lock);
    json_t *st = load_state();
    while (st && hanging(st, fn)) {
        drop_state(st);
        pthread_mutex_unlock(&g_lock);
        sleep_ms(POLL_MS);
        pthread_mutex_lock(&g_lock);
        st = load_state();
    }
    return st;
}

static ULONG leave(json_t *st, ULONG rc)
{
    drop_state(st);
    pthread_mutex_unlock(&g_lock);
    return rc;
}

static json_t *find_named(json_t *array, const char *name)
{
    json_t *v;
    size_t i;
    if (!name)
        return NULL;
    json_array_foreach(array, i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));
        if (n && strcmp(n, name) == 0)
            return v;
    }
    return NULL;
}

static json_int_t get_int(json_t *obj, const char *key, json_int_t dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static const char *get_str(json_t *obj, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : dflt;
}

static int dev_present(json_t *dev)
{
    return dev && json_is_true(json_object_get(dev, "present"));
}

/* ---- handles ------------------------------------------------------------ */

static struct obj *new_obj(enum kind kind, struct obj *parent, const char *name)
{
    struct obj *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->kind = kind;
    o->parent = parent;
    snprintf(o->name, sizeof o->name, "%s", name);
    o->next = g_objs;
    g_objs = o;
    return o;
}

static int descends(const struct obj *o, const struct obj *ancestor)
{
    for (; o; o = o->parent)
        if (o == ancestor)
            return 1;
    return 0;
}

/* Closes an object and everything opened through it. */
static void close_tree(struct obj *root)
{
    for (struct obj *o = g_objs; o; o = o->next)
        if (descends(o, root)) {
            o->closed = 1;
            o->user_in = o->admin_in = 0;
            if (o->locked) {
                o->locked = 0;
                pthread_cond_broadcast(&g_cond);
            }
        }
}

static struct obj *live(void *h, enum kind kind)
{
    for (struct obj *o = g_objs; o; o = o->next)
        if (o == h)
            return o->kind == kind && !o->closed ? o : NULL;
    return NULL;
}

struct ctx {
    struct obj *dev_o, *app_o, *con_o;
    json_t *dev, *app, *con;
};

/* Handle -> its objects and their places in the state. A device the state
 * calls absent (or that has gone from it) makes the handle, and everything
 * opened through it, SAR_DEVICE_REMOVED for good: a real token's handles
 * do not survive a removal, and the login goes with it. */
static ULONG resolve(json_t *st, void *h, enum kind kind, struct ctx *c)
{
    struct obj *o = live(h, kind);
    memset(c, 0, sizeof *c);
    if (!o)
        return SAR_INVALIDHANDLEERR;
    for (struct obj *p = o; p; p = p->parent) {
        if (p->closed)
            return SAR_INVALIDHANDLEERR;
        if (p->kind == OBJ_DEV)
            c->dev_o = p;
        else if (p->kind == OBJ_APP)
            c->app_o = p;
        else
            c->con_o = p;
    }
    if (!c->dev_o)
        return SAR_INVALIDHANDLEERR;
    c->dev = find_named(json_object_get(st, "devices"), c->dev_o->name);
    if (c->dev_o->removed || !dev_present(c->dev)) {
        if (!c->dev_o->removed) {
            c->dev_o->removed = 1;
            for (struct obj *p = g_objs; p; p = p->next)
                if (descends(p, c->dev_o))
                    p->user_in = p->admin_in = 0;
        }
        return SAR_DEVICE_REMOVED;
    }
    if (c->app_o) {
        c->app = find_named(json_object_get(c->dev, "applications"), c->app_o->name);
        if (!c->app)
            return SAR_APPLICATION_NOT_EXISTS;
    }
    if (c->con_o) {
        c->con = find_named(json_object_get(c->app, "containers"), c->con_o->name);
        if (!c->con)
            return SAR_INVALIDHANDLEERR;
    }
    return SAR_OK;
}

/* ---- name lists ----------------------------------------------------------
 * Each name NUL-terminated, the list ended by one more NUL; the size counts
 * every byte. An empty list is the final NUL alone (size 1). */
static ULONG name_list(json_t *st, json_t *array, int present_only, LPSTR buf, ULONG *size)
{
    json_t *v;
    size_t i, need = 1, off = 0;
    if (!size)
        return SAR_INVALIDPARAMERR;
    if (st && fault_on(st, "bad_name_list")) {
        /* A list with no terminating double NUL that fills the whole buffer;
         * the size query claims a lot, and a buffer of that size is filled. */
        if (!buf) {
            *size = BAD_LIST_CLAIM;
            return SAR_OK;
        }
        static const char pattern[] = "SOFTSKF-GARBAGE-NAME";
        for (ULONG k = 0; k < *size; k++)
            buf[k] = (k + 1) % sizeof pattern == 0 ? '\0' : pattern[k % sizeof pattern];
        if (*size)
            buf[*size - 1] = 'X';
        return SAR_OK;
    }
    json_array_foreach(array, i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));
        if (n && *n && (!present_only || dev_present(v)))
            need += strlen(n) + 1;
    }
    if (!buf) {
        *size = (ULONG)need;
        return SAR_OK;
    }
    if (*size < need) {
        *size = (ULONG)need;
        return SAR_BUFFER_TOO_SMALL;
    }
    json_array_foreach(array, i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));
        if (n && *n && (!present_only || dev_present(v))) {
            memcpy(buf + off, n, strlen(n) + 1);
            off += strlen(n) + 1;
        }
    }
    buf[off] = '\0';
    *size = (ULONG)need;
    return SAR_OK;
}

/* ---- the children of a device (applications) or an application
 * (containers): listed, opened and closed alike ---------------------------- */

/* The JSON list `key` of the parent that handle `h` (of `kind`) names. */
static json_t *children(const struct ctx *c, enum kind kind, const char *key)
{
    return json_object_get(kind == OBJ_DEV ? c->dev : c->app, key);
}

static ULONG enum_children(const char *fn, HANDLE h, enum kind kind, const char *key, LPSTR names, ULONG *size)
{
    json_t *st = enter(fn);
    struct ctx c;
    ULONG rc = resolve(st, h, kind, &c);
    if (rc == SAR_OK)
        rc = name_list(st, children(&c, kind, key), 0, names, size);
    return leave(st, rc);
}

/* Opens child `name` of `key` as a `child` handle; `missing` when there is none. */
static ULONG open_child(const char *fn, HANDLE h, enum kind kind, const char *key, LPSTR name, ULONG missing,
                        enum kind child, HANDLE *out)
{
    json_t *st = enter(fn);
    struct ctx c;
    struct obj *o;
    ULONG rc = resolve(st, h, kind, &c);
    if (rc != SAR_OK)
        return leave(st, rc);
    if (!name || !out)
        return leave(st, SAR_INVALIDPARAMERR);
    if (!find_named(children(&c, kind, key), name))
        return leave(st, missing);
    if (!(o = new_obj(child, kind == OBJ_DEV ? c.dev_o : c.app_o, name)))
        return leave(st, SAR_MEMORYERR);
    *out = o;
    return leave(st, SAR_OK);
}

static ULONG close_handle(const char *fn, HANDLE h, enum kind kind)
{
    json_t *st = enter(fn);
    struct obj *o = live(h, kind);
    if (!o)
        return leave(st, SAR_INVALIDHANDLEERR);
    close_tree(o);
    return leave(st, SAR_OK);
}

/* ---- keys and certificates ---------------------------------------------- */

static X509 *load_cert(const char *rel)
{
    char *path = resolve_path(rel);
    size_t len = 0;
    unsigned char *buf = path ? read_file(path, &len) : NULL;
    X509 *x = NULL;
    free(path);
    if (!buf)
        return NULL;
    if (len > 10 && memcmp(buf, "-----BEGIN", 10) == 0) {
        BIO *bio = BIO_new_mem_buf(buf, (int)len);
        x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    } else {
        const unsigned char *p = buf;
        x = d2i_X509(NULL, &p, (long)len);
    }
    free_file(buf, len);
    return x;
}

/* An SM2 key must be an SM2-type EVP_PKEY for EVP_PKEY_sign to do SM2 (and
 * not ECDSA): a traditional "EC PRIVATE KEY" on the SM2 curve may load as
 * EC, so it is rebuilt as SM2 from its parameters. */
static EVP_PKEY *as_sm2(EVP_PKEY *pk)
{
    char group[64] = "";
    OSSL_PARAM *params = NULL;
    EVP_PKEY *out = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (!pk || EVP_PKEY_is_a(pk, "SM2"))
        return pk;
    if (!EVP_PKEY_is_a(pk, "EC") ||
        !EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL) ||
        strcmp(group, "SM2") != 0)
        return pk;
    if (EVP_PKEY_todata(pk, EVP_PKEY_KEYPAIR, &params) == 1 &&
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL)) != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &out, EVP_PKEY_KEYPAIR, params) == 1) {
        EVP_PKEY_free(pk);
        pk = out;
    }
    EVP_PKEY_CTX_free(ctx);
    for (OSSL_PARAM *p = params; p && p->key; p++)
        if (p->data)
            OPENSSL_cleanse(p->data, p->data_size);
    OSSL_PARAM_free(params);
    return pk;
}

static EVP_PKEY *load_key(const char *rel)
{
    char *path = resolve_path(rel);
    size_t len = 0;
    unsigned char *buf = path ? read_file(path, &len) : NULL;
    EVP_PKEY *pk = NULL;
    free(path);
    if (!buf)
        return NULL;
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    if (bio)
        pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (!pk && bio) {
        const unsigned char *p = buf;
        pk = d2i_AutoPrivateKey(NULL, &p, (long)len);
    }
    BIO_free(bio);
    free_file(buf, len);
    return as_sm2(pk);
}

static int is_sm2(EVP_PKEY *pk)
{
    char group[64] = "";
    if (EVP_PKEY_is_a(pk, "SM2"))
        return 1;
    return EVP_PKEY_is_a(pk, "EC") &&
           EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL) &&
           strcmp(group, "SM2") == 0;
}

/* The public key of a container's signing or encryption pair: the
 * certificate's, else the private key's. Caller frees. */
static EVP_PKEY *container_pubkey(json_t *con, int sign)
{
    X509 *x = load_cert(get_str(con, sign ? "sign_cert" : "enc_cert", NULL));
    EVP_PKEY *pk = NULL;
    if (x) {
        pk = X509_get_pubkey(x);
        X509_free(x);
    }
    if (!pk)
        pk = load_key(get_str(con, sign ? "sign_key" : "enc_key", NULL));
    return pk;
}

/* SM2 signature of e as given (no hashing: OpenSSL 3.0's SM2 EVP_PKEY_sign
 * with no digest set signs the input as the digest), r and s right-aligned. */
static int sm2_sign_e(EVP_PKEY *pk, const unsigned char e[32], ECCSIGNATUREBLOB *blob)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
    unsigned char der[128];
    size_t derlen = sizeof der;
    ECDSA_SIG *sig = NULL;
    int ok = 0;
    if (ctx && EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_sign(ctx, der, &derlen, e, 32) == 1) {
        const unsigned char *p = der;
        sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    }
    if (sig) {
        memset(blob, 0, sizeof *blob);
        ok = BN_bn2binpad(ECDSA_SIG_get0_r(sig), blob->r + 32, 32) == 32 &&
             BN_bn2binpad(ECDSA_SIG_get0_s(sig), blob->s + 32, 32) == 32;
    }
    ECDSA_SIG_free(sig);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* ---- WaitForDevEvent's view ---------------------------------------------- */

static json_t *snapshot(json_t *st)
{
    json_t *seen = json_object(), *dev;
    size_t i;
    json_array_foreach(json_object_get(st, "devices"), i, dev) {
        const char *n = json_string_value(json_object_get(dev, "name"));
        if (n)
            json_object_set_new(seen, n, json_boolean(dev_present(dev)));
    }
    return seen;
}

__attribute__((constructor)) static void softskf_load(void)
{
    /* The first wait compares with the state at library load: a device
     * inserted between dlopen and the first wait is still an event. Quiet
     * here; a missing state is reported by the first call. */
    const char *path = getenv("SOFTSKF_STATE");
    size_t len = 0;
    unsigned char *buf = path ? read_file(path, &len) : NULL;
    json_t *st = buf ? json_loadb((const char *)buf, len, 0, NULL) : NULL;
    free_file(buf, len);
    if (st && json_is_array(json_object_get(st, "devices")))
        g_seen = snapshot(st);
    drop_state(st);
}

__attribute__((destructor)) static void softskf_unload(void)
{
    while (g_objs) {
        struct obj *o = g_objs;
        g_objs = o->next;
        free(o);
    }
    json_decref(g_seen);
    g_seen = NULL;
}

/* ---- devices ------------------------------------------------------------ */

SKF_EXPORT ULONG SKF_WaitForDevEvent(LPSTR szDevName, ULONG *pulDevNameLen, ULONG *pulEvent)
{
    if (!pulDevNameLen || !pulEvent)
        return SAR_INVALIDPARAMERR;
    json_t *st = enter(__func__);
    unsigned gen = g_cancel_gen;
    ULONG rc = SAR_OK;
    if (!g_seen)
        g_seen = st ? snapshot(st) : json_object();
    g_waiters++;
    for (;;) {
        if (g_cancel_pending || g_cancel_gen != gen) {
            /* Cancelled: SAR_OK, event 0, empty name (faults.cancel_error:
             * SAR_FAIL instead, as some vendors answer). */
            g_cancel_pending = 0;
            *pulEvent = SKF_EVENT_NONE;
            if (szDevName && *pulDevNameLen)
                szDevName[0] = '\0';
            *pulDevNameLen = 0;
            rc = st && fault_on(st, "cancel_error") ? SAR_FAIL : SAR_OK;
            break;
        }
        const char *name = NULL;
        int present = 0;
        if (st) { /* an unreadable state is no news, not a removal of everything */
            json_t *dev, *v;
            size_t i;
            const char *key;
            json_array_foreach(json_object_get(st, "devices"), i, dev) {
                const char *n = json_string_value(json_object_get(dev, "name"));
                if (n && dev_present(dev) != json_is_true(json_object_get(g_seen, n))) {
                    name = n;
                    present = dev_present(dev);
                    break;
                }
            }
            if (!name)
                json_object_foreach(g_seen, key, v) {
                    if (json_is_true(v) && !find_named(json_object_get(st, "devices"), key)) {
                        name = key;
                        present = 0;
                        break;
                    }
                }
        }
        if (name) {
            size_t need = strlen(name) + 1;
            if (!szDevName || *pulDevNameLen < need) {
                *pulDevNameLen = (ULONG)need; /* the event stays pending */
                rc = SAR_BUFFER_TOO_SMALL;
                break;
            }
            memcpy(szDevName, name, need);
            *pulDevNameLen = (ULONG)need;
            *pulEvent = present ? SKF_EVENT_INSERTED : SKF_EVENT_REMOVED;
            json_object_set_new(g_seen, szDevName, json_boolean(present));
            rc = SAR_OK;
            break;
        }
        drop_state(st);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += POLL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g_cond, &g_lock, &until);
        st = load_state();
    }
    g_waiters--;
    return leave(st, rc);
}

SKF_EXPORT ULONG SKF_CancelWaitForDevEvent(void)
{
    pthread_mutex_lock(&g_lock);
    g_cancel_gen++;
    if (g_waiters == 0)
        g_cancel_pending = 1; /* the agent may cancel just before its thread waits */
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
    return SAR_OK;
}

SKF_EXPORT ULONG SKF_EnumDev(BOOL bPresent, LPSTR szNameList, ULONG *pulSize)
{
    json_t *st = enter(__func__);
    return leave(st, name_list(st, json_object_get(st, "devices"), bPresent != 0, szNameList, pulSize));
}

SKF_EXPORT ULONG SKF_ConnectDev(LPSTR szName, DEVHANDLE *phDev)
{
    json_t *st = enter(__func__);
    if (!szName || !phDev)
        return leave(st, SAR_INVALIDPARAMERR);
    json_t *dev = find_named(json_object_get(st, "devices"), szName);
    if (!dev)
        return leave(st, SAR_INVALIDPARAMERR);
    if (!dev_present(dev))
        return leave(st, SAR_DEVICE_REMOVED);
    struct obj *o = new_obj(OBJ_DEV, NULL, szName);
    if (!o)
        return leave(st, SAR_MEMORYERR);
    *phDev = o;
    return leave(st, SAR_OK);
}

SKF_EXPORT ULONG SKF_DisConnectDev(DEVHANDLE hDev)
{
    return close_handle(__func__, hDev, OBJ_DEV); /* even a removed device can be disconnected */
}

SKF_EXPORT ULONG SKF_GetDevState(LPSTR szDevName, ULONG *pulDevState)
{
    json_t *st = enter(__func__);
    if (!szDevName || !pulDevState)
        return leave(st, SAR_INVALIDPARAMERR);
    *pulDevState = dev_present(find_named(json_object_get(st, "devices"), szDevName)) ? DEV_PRESENT_STATE
                                                                                         : DEV_ABSENT_STATE;
    return leave(st, SAR_OK);
}

static void put_field(CHAR *field, size_t size, const char *text)
{
    size_t n = strlen(text);
    memcpy(field, text, n < size - 1 ? n : size - 1); /* the struct is zeroed: NUL-terminated */
}

SKF_EXPORT ULONG SKF_GetDevInfo(DEVHANDLE hDev, DEVINFO *pDevInfo)
{
    json_t *st = enter(__func__);
    struct ctx c;
    ULONG rc = resolve(st, hDev, OBJ_DEV, &c);
    if (rc != SAR_OK)
        return leave(st, rc);
    if (!pDevInfo)
        return leave(st, SAR_INVALIDPARAMERR);
    if (fault_on(st, "bad_devinfo")) {
        /* A vendor's larger, different struct: 600 bytes, no NUL anywhere. */
        unsigned char *p = (unsigned char *)pDevInfo;
        for (size_t i = 0; i < 600; i++)
            p[i] = (unsigned char)(0x41 + (i * 7) % 58);
        return leave(st, SAR_OK);
    }
    memset(pDevInfo, 0, sizeof *pDevInfo);
    pDevInfo->Version.major = 1;
    pDevInfo->Version.minor = 0;
    put_field(pDevInfo->Manufacturer, sizeof pDevInfo->Manufacturer, get_str(c.dev, "manufacturer", "ukey-agent soft SKF"));
    put_field(pDevInfo->Issuer, sizeof pDevInfo->Issuer, get_str(c.dev, "issuer", "ukey-agent tests"));
    put_field(pDevInfo->Label, sizeof pDevInfo->Label, get_str(c.dev, "label", c.dev_o->name));
    put_field(pDevInfo->SerialNumber, sizeof pDevInfo->SerialNumber, get_str(c.dev, "serial", c.dev_o->name));
    pDevInfo->HWVersion.major = 1;
    pDevInfo->FirmwareVersion.major = 1;
    pDevInfo->AlgSymCap = SGD_SMS4_ECB;
    pDevInfo->AlgAsymCap = SGD_RSA | SGD_SM2_1;
    pDevInfo->AlgHashCap = SGD_SM3 | SGD_SHA1 | SGD_SHA256;
    pDevInfo->DevAuthAlgId = SGD_SMS4_ECB;
    pDevInfo->TotalSpace = 65536;
    pDevInfo->FreeSpace = 32768;
    pDevInfo->MaxECCBufferSize = 256;
    pDevInfo->MaxBufferSize = 2048;
    return leave(st, SAR_OK);
}

/* Advisory between device handles: a second handle's LockDev waits for
 * UnlockDev or DisConnectDev up to ulTimeOut ms (0xFFFFFFFF: forever). */
SKF_EXPORT ULONG SKF_LockDev(DEVHANDLE hDev, ULONG ulTimeOut)
{
    json_t *st = enter(__func__);
    struct ctx c;
    ULONG rc = resolve(st, hDev, OBJ_DEV, &c);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (rc == SAR_OK) {
        struct obj *holder = NULL;
        for (struct obj *o = g_objs; o; o = o->next)
            if (o != c.dev_o && o->kind == OBJ_DEV && o->locked && strcmp(o->name, c.dev_o->name) == 0)
                holder = o;
        if (!holder) {
            c.dev_o->locked = 1;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long waited = (now.tv_sec - start.tv_sec) * 1000L + (now.tv_nsec - start.tv_nsec) / 1000000L;
        if (ulTimeOut != 0xFFFFFFFFu && ulTimeOut != (ULONG)-1 && waited >= (long)ulTimeOut) {
            rc = SAR_TIMEOUTERR;
            break;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 10 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g_cond, &g_lock, &until);
        if (c.dev_o->closed)
            rc = SAR_INVALIDHANDLEERR;
    }
    return leave(st, rc);
}

SKF_EXPORT ULONG SKF_UnlockDev(DEVHANDLE hDev)
{
    json_t *st = enter(__func__);
    struct ctx c;
    ULONG rc = resolve(st, hDev, OBJ_DEV, &c);
    if (rc == SAR_OK && c.dev_o->locked) {
        c.dev_o->locked = 0;
        pthread_cond_broadcast(&g_cond);
    }
    return leave(st, rc);
}

SKF_EXPORT ULONG SKF_GenRandom(DEVHANDLE hDev, BYTE *pbRandom, ULONG ulRandomLen)
{
    json_t *st = enter(__func__);
    struct ctx c;
    ULONG rc = resolve(st, hDev, OBJ_DEV, &c);
    if (rc != SAR_OK)
        return leave(st, rc);
    if (!pbRandom || ulRandomLen > 0x7fffffff)
        return leave(st, SAR_INVALIDPARAMERR);
    if (ulRandomLen && RAND_bytes(pbRandom, (int)ulRandomLen) != 1)
        return leave(st, SAR_GENRANDERR);
    return leave(st, SAR_OK);
}

/* ---- applications and PINs ---------------------------------------------- */

SKF_EXPORT ULONG SKF_EnumApplication(DEVHANDLE hDev, LPSTR szAppName, ULONG *pulSize)
{
    return enum_children(__func__, hDev, OBJ_DEV, "applications", szAppName, pulSize);
}

SKF_EXPORT ULONG SKF_OpenApplication(DEVHANDLE hDev, LPSTR szAppName, HAPPLICATION *phApplication)
{
    return open_child(__func__, hDev, OBJ_DEV, "applications", szAppName, SAR_APPLICATION_NOT_EXISTS, OBJ_APP,
                      phApplication);
}

SKF_EXPORT ULONG SKF_CloseApplication(HAPPLICATION hApplication)
{
    return close_handle(__func__, hApplication, OBJ_APP);
}

/* The JSON keys of one PIN of an application. */
struct pin_keys {
    const char *pin, *max, *left, *dflt;
    json_int_t max_dflt;
};

static const struct pin_keys USER_KEYS = {"pin", "pin_max_retries", "pin_retries_left", "default_pin", 6};
static const struct pin_keys ADMIN_KEYS = {"admin_pin", "admin_max_retries", "admin_retries_left",
                                           "admin_default_pin", 10};

static const struct pin_keys *pin_keys(ULONG type)
{
    return type == USER_TYPE ? &USER_KEYS : type == ADMIN_TYPE ? &ADMIN_KEYS : NULL;
}

/* Checks a PIN against the state with its own counter: right -> counter back
 * to max; wrong -> one try fewer, written back, SAR_PIN_INCORRECT with the
 * tries left, or SAR_PIN_LOCKED when none are left. */
static ULONG check_pin(json_t *st, json_t *app, const struct pin_keys *k, const char *given, ULONG *retry)
{
    const char *pin = get_str(app, k->pin, NULL);
    json_int_t max = get_int(app, k->max, k->max_dflt);
    json_int_t left = get_int(app, k->left, max);
    ULONG dummy;
    if (!retry)
        retry = &dummy;
    if (!given || !pin)
        return SAR_INVALIDPARAMERR;
    if (left <= 0) {
        *retry = 0;
        return SAR_PIN_LOCKED;
    }
    size_t glen = strlen(given), plen = strlen(pin);
    if (glen == plen && CRYPTO_memcmp(given, pin, plen) == 0) {
        if (left != max) {
            json_object_set_new(app, k->left, json_integer(max));
            if (save_state(st) != 0)
                return SAR_WRITEFILEERR;
        }
        *retry = (ULONG)max;
        return SAR_OK;
    }
    left--;
    json_object_set_new(app, k->left, json_integer(left));
    if (save_state(st) != 0)
        return SAR_WRITEFILEERR;
    *retry = (ULONG)left;
    return left == 0 ? SAR_PIN_LOCKED : SAR_PIN_INCORRECT;
}

/* Replaces a PIN in the state, scrubbing the old value first. */
static void set_pin(json_t *app, const char *key, const char *value)
{
    json_t *old = json_object_get(app, key);
    if (json_is_string(old))
        OPENSSL_cleanse((char *)json_string_value(old), json_string_length(old));
    json_object_set_new(app, key, json_string(value));
}

SKF_EXPORT ULONG SKF_GetPINInfo(HAPPLICATION hApplication, ULONG ulPINType, ULONG *pulMaxRetryCount,
                                ULONG *pulRemainRetryCount, BOOL *pbDefaultPin)
{
    json_t *st = enter(__func__);
    struct ctx c;
    ULONG rc = resolve(st, hApplication, OBJ_APP, &c);
    const struct pin_keys *k = pin_keys(ulPINType);
    if (rc != SAR_OK)
        return leave(st, rc);
    if (!k)
        return leave(st, SAR_USER_TYPE_INVALID);
    if (!pulMaxRetryCount || !pulRemainRetryCount || !pbDefaultPin)
        return leave(st, SAR_INVALIDPARAMERR);
    json_int_t max = get_int(c.app, k->max, k->max_dflt);
    json_int_t left = get_int(c.app, k->left, max);
    *pulMaxRetryCount = (ULONG)max;
    *pulRemainRetryCount = (ULONG)(left < 0 ? 0 : left);
    *pbDefaultPin = json_is_true(json_object_get(c.app, k->dflt)) ? TRUE : FALSE;
    return leave(st, SAR_OK);
}

SKF_EXPORT ULONG SKF_VerifyPIN(HAPPLICATION hApplication, ULONG ulPINType, LPSTR szPIN, ULONG *pulRetryCount)
{
    json_t *st = enter(__func__);
    struct ctx c;
    ULONG rc = resolve(st, hApplication, OBJ_APP, &c);
    const struct pin_keys *k = pin_keys(ulPINType);
    if (rc != SAR_OK)
        return leave(st, rc);
    if (!k)
        return leave(st, SAR_USER_TYPE_INVALID);
    rc = check_pin(st, c.app, k, szPIN, pulRetryCount);
    /* A failed verify drops the login of that PIN, as cards do. */
    if (ulPINType == USER_TYPE)
        c.app_o->user_in = rc == SAR_OK;
    else
        c.app_o->admin_in = rc == SAR_OK;
    return leave(st, rc);
}

SKF_EXPORT ULONG SKF_ChangePIN(HAPPLICATION hApplication, ULONG ulPINType, LPSTR szOldPin, LPSTR szNewPin,
                               ULONG *pulRetryCount)
{
    json_t *st = enter(__func__);
    struct ctx c;
    ULONG rc = resolve(st, hApplication, OBJ_APP, &c);
    const struct pin_keys *k = pin_keys(ulPINType);
    if (rc != SAR_OK)
        return leave(st, rc);
    if (!k)
        return leave(st, SAR_USER_TYPE_INVALID);
    if (!szNewPin || !*szNewPin)
        return leave(st, SAR_INVALIDPARAMERR);
    if (strlen(szNewPin) < 6 || strlen(szNewPin) > 16)
        return leave(st, SAR_PIN_LEN_RANGE);
    rc = check_pin(st, c.app, k, szOldPin, pulRetryCount);
    if (rc == SAR_OK) {
        set_pin(c.app, k->pin, szNewPin);
        json_object_set_new(c.app, k->dflt, json_false());
        if (save_state(st) != 0)
            rc = SAR_WRITEFILEERR;
    }
    return leave(st, rc);
}

SKF_EXPORT ULONG SKF_UnblockPIN(HAPPLICATION hApplication, LPSTR szAdminPIN, LPSTR szNewUserPIN,
                                ULONG *pulRetryCount)
{
    json_t *st = enter(__func__);
    struct ctx c;
    ULONG rc = resolve(st, hApplication, OBJ_APP, &c);
    if (rc != SAR_OK)
        return leave(st, rc);
    if (!szNewUserPIN || !*szNewUserPIN)
        return leave(st, SAR_INVALIDPARAMERR);
    if (strlen(szNewUserPIN) < 6 || strlen(szNewUserPIN) > 16)
        return leave(st, SAR_PIN_LEN_RANGE);
    rc = check_pin(st, c.app, &ADMIN_KEYS, szAdminPIN, pulRetryCount);
    if (rc == SAR_OK) {
        set_pin(c.app, USER_KEYS.pin, szNewUserPIN);
        json_object_set_new(c.app, USER_KEYS.left, json_integer(get_int(c.app, USER_KEYS.max, USER_KEYS.max_dflt)));
        if (save_state(st) != 0)
            rc = SAR_WRITEFILEERR;
    }
    return leave(st, rc);
}

SKF_EXPORT ULONG SKF_ClearSecureState(HAPPLICATION hApplication)
{
    json_t *st = enter(__func__);
    struct ctx c;
    ULONG rc = resolve(st, hApplication, OBJ_APP, &c);
    if (rc == SAR_OK)
        c.app_o->user_in = c.app_o->admin_in = 0;
    return leave(st, rc);
}

/* ---- containers ---------------------------------------------------------- */

SKF_EXPORT ULONG SKF_EnumContainer(HAPPLICATION hApplication, LPSTR szContainerName, ULONG *pulSize)
{
    return enum_children(__func__, hApplication, OBJ_APP, "containers", szContainerName, pulSize);
}

SKF_EXPORT ULONG SKF_OpenContainer(HAPPLICATION hApplication, LPSTR szContainerName, HCONTAINER *phContainer)
{
    return open_child(__func__, hApplication, OBJ_APP, "containers", szContainerName, SAR_INVALIDPARAMERR, OBJ_CON,
                      phContainer);
}

SKF_EXPORT ULONG SKF_CloseContainer(HCONTAINER hContainer)
{
    return close_handle(__func__, hContainer, OBJ_CON);
}

SKF_EXPORT ULONG SKF_GetContainerType(HCONTAINER hContainer, ULONG *pulContainerType)
{
    json_t *st = enter(__func__);
    struct ctx c;
    ULONG rc = resolve(st, hContainer, OBJ_CON, &c);
    if (rc != SAR_OK)
        return leave(st, rc);
    if (!pulContainerType)
        return leave(st, SAR_INVALIDPARAMERR);
    json_int_t type = get_int(c.con, "type", -1);
    if (type < 0) {
        EVP_PKEY *pk = container_pubkey(c.con, 1);
        type = !pk ? CONTAINER_EMPTY : EVP_PKEY_is_a(pk, "RSA") ? CONTAINER_RSA : CONTAINER_SM2;
        EVP_PKEY_free(pk);
    }
    *pulContainerType = (ULONG)type;
    return leave(st, SAR_OK);
}

/* Copies out a variable-length result: NULL buffer = size query. */
static ULONG put_var(const void *data, size_t len, BYTE *buf, ULONG *buflen)
{
    if (!buf) {
        *buflen = (ULONG)len;
        return SAR_OK;
    }
    if (*buflen < len) {
        *buflen = (ULONG)len;
        return SAR_BUFFER_TOO_SMALL;
    }
    memcpy(buf, data, len);
    *buflen = (ULONG)len;
    return SAR_OK;
}

SKF_EXPORT ULONG SKF_ExportCertificate(HCONTAINER hContainer, BOOL bSignFlag, BYTE *pbCert, ULONG *pulCertLen)
{
    json_t *st = enter(__func__);
    struct ctx c;
    ULONG rc = resolve(st, hContainer, OBJ_CON, &c);
    if (rc != SAR_OK)
        return leave(st, rc);
    if (!pulCertLen)
        return leave(st, SAR_INVALIDPARAMERR);
    if (fault_on(st, "bad_cert")) {
        unsigned char junk[200];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (unsigned char)("this is not a DER certificate. "[i % 31]);
        return leave(st, put_var(junk, sizeof junk, pbCert, pulCertLen));
    }
    X509 *x = load_cert(get_str(c.con, bSignFlag ? "sign_cert" : "enc_cert", NULL));
    unsigned char *der = NULL;
    int len = x ? i2d_X509(x, &der) : -1;
    X509_free(x);
    if (len <= 0)
        return leave(st, SAR_CERTNOTFOUNTERR);
    rc = put_var(der, (size_t)len, pbCert, pulCertLen);
    OPENSSL_free(der);
    return leave(st, rc);
}

SKF_EXPORT ULONG SKF_ExportPublicKey(HCONTAINER hContainer, BOOL bSignFlag, BYTE *pbBlob, ULONG *pulBlobLen)
{
    json_t *st = enter(__func__);
    struct ctx c;
    ULONG rc = resolve(st, hContainer, OBJ_CON, &c);
    if (rc != SAR_OK)
        return leave(st, rc);
    if (!pulBlobLen)
        return leave(st, SAR_INVALIDPARAMERR);
    EVP_PKEY *pk = container_pubkey(c.con, bSignFlag != 0);
    BIGNUM *n = NULL, *e = NULL;
    if (!pk)
        return leave(st, SAR_KEYNOTFOUNTERR);
    if (is_sm2(pk) || EVP_PKEY_is_a(pk, "EC")) {
        ECCPUBLICKEYBLOB blob;
        unsigned char point[65];
        size_t plen = 0;
        if (!pbBlob) {
            rc = put_var(NULL, sizeof blob, NULL, pulBlobLen);
            goto out;
        }
        if (fault_on(st, "pubkey_mismatch")) { /* a fresh key: valid, but not the certificate's */
            EVP_PKEY_free(pk);
            pk = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
        }
        if (!pk ||
            !EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof point, &plen) ||
            plen != 65 || point[0] != 0x04) {
            rc = SAR_KEYINFOTYPEERR;
            goto out;
        }
        memset(&blob, 0, sizeof blob);
        blob.BitLen = 256;
        memcpy(blob.XCoordinate + 32, point + 1, 32);
        memcpy(blob.YCoordinate + 32, point + 33, 32);
        rc = put_var(&blob, sizeof blob, pbBlob, pulBlobLen);
    } else if (EVP_PKEY_is_a(pk, "RSA")) {
        RSAPUBLICKEYBLOB blob;
        int bits = EVP_PKEY_get_bits(pk);
        if (!pbBlob) {
            rc = put_var(NULL, sizeof blob, NULL, pulBlobLen);
            goto out;
        }
        memset(&blob, 0, sizeof blob);
        if (bits <= 0 || bits > 2048 || !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) ||
            !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) || BN_num_bytes(e) > 4) {
            rc = SAR_MODULUSLENERR;
            goto out;
        }
        blob.AlgID = SGD_RSA;
        blob.BitLen = (ULONG)bits;
        BN_bn2binpad(n, blob.Modulus, sizeof blob.Modulus);
        BN_bn2binpad(e, blob.PublicExponent, sizeof blob.PublicExponent);
        if (fault_on(st, "pubkey_mismatch"))
            blob.Modulus[sizeof blob.Modulus - 2] ^= 0x5a; /* another modulus, still odd */
        rc = put_var(&blob, sizeof blob, pbBlob, pulBlobLen);
    } else {
        rc = SAR_KEYINFOTYPEERR;
    }
out:
    BN_free(n);
    BN_free(e);
    EVP_PKEY_free(pk);
    return leave(st, rc);
}

SKF_EXPORT ULONG SKF_ECCSignData(HCONTAINER hContainer, BYTE *pbData, ULONG ulDataLen, ECCSIGNATUREBLOB *pSignature)
{
    json_t *st = enter(__func__);
    struct ctx c;
    ULONG rc = resolve(st, hContainer, OBJ_CON, &c);
    if (rc != SAR_OK)
        return leave(st, rc);
    if (!pbData || !pSignature)
        return leave(st, SAR_INVALIDPARAMERR);
    if (!c.app_o->user_in)
        return leave(st, SAR_USER_NOT_LOGGED_IN);
    if (ulDataLen != 32)
        return leave(st, SAR_INDATALENERR);
    /* Only the signing key ever signs. */
    EVP_PKEY *pk = load_key(get_str(c.con, "sign_key", NULL));
    if (!pk)
        return leave(st, SAR_KEYNOTFOUNTERR);
    if (!EVP_PKEY_is_a(pk, "SM2")) {
        EVP_PKEY_free(pk);
        return leave(st, SAR_KEYUSAGEERR);
    }
    const char *bad = json_string_value(json_object_get(faults(st), "bad_signature"));
    unsigned char e[32];
    memcpy(e, pbData, 32);
    if (bad && strcmp(bad, "wrong") == 0)
        e[31] ^= 0x01; /* a good signature, over other data */
    if (bad && strcmp(bad, "garbage") == 0) {
        memset(pSignature, 0, sizeof *pSignature);
        rc = RAND_bytes(pSignature->r + 32, 32) == 1 && RAND_bytes(pSignature->s + 32, 32) == 1 ? SAR_OK : SAR_GENRANDERR;
    } else {
        rc = sm2_sign_e(pk, e, pSignature) ? SAR_OK : SAR_FAIL;
    }
    if (rc == SAR_OK && bad && strcmp(bad, "misaligned") == 0) {
        /* Left-aligned, as a careless vendor might: the leading 32 bytes are
         * r and s, the rest zero. */
        memmove(pSignature->r, pSignature->r + 32, 32);
        memset(pSignature->r + 32, 0, 32);
        memmove(pSignature->s, pSignature->s + 32, 32);
        memset(pSignature->s + 32, 0, 32);
    }
    EVP_PKEY_free(pk);
    return leave(st, rc);
}

SKF_EXPORT ULONG SKF_RSASignData(HCONTAINER hContainer, BYTE *pbData, ULONG ulDataLen, BYTE *pbSignature,
                                 ULONG *pulSignLen)
{
    json_t *st = enter(__func__);
    struct ctx c;
    ULONG rc = resolve(st, hContainer, OBJ_CON, &c);
    EVP_PKEY_CTX *ctx = NULL;
    if (rc != SAR_OK)
        return leave(st, rc);
    if (!pbData || !pulSignLen)
        return leave(st, SAR_INVALIDPARAMERR);
    EVP_PKEY *pk = load_key(get_str(c.con, "sign_key", NULL));
    if (!pk)
        return leave(st, SAR_KEYNOTFOUNTERR);
    size_t k = (size_t)EVP_PKEY_get_size(pk), siglen = k;
    if (!EVP_PKEY_is_a(pk, "RSA")) {
        rc = SAR_KEYUSAGEERR;
    } else if (!pbSignature) {
        *pulSignLen = (ULONG)k; /* a size query needs no login */
    } else if (!c.app_o->user_in) {
        rc = SAR_USER_NOT_LOGGED_IN;
    } else if (ulDataLen == 0 || ulDataLen > k - 11) {
        rc = SAR_INDATALENERR;
    } else if (*pulSignLen < k) {
        *pulSignLen = (ULONG)k;
        rc = SAR_BUFFER_TOO_SMALL;
    } else if ((ctx = EVP_PKEY_CTX_new(pk, NULL)) == NULL || EVP_PKEY_sign_init(ctx) != 1 ||
               EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
               EVP_PKEY_sign(ctx, pbSignature, &siglen, pbData, ulDataLen) != 1) {
        rc = SAR_FAIL; /* PKCS#1 v1.5 type 1 over the input as given (a DigestInfo) */
    } else {
        *pulSignLen = (ULONG)siglen;
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return leave(st, rc);
}
