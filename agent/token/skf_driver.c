/*
 * The SKF driver (token.h's table over GM/T 0016): one device, its first
 * application, its containers. skf.c connects and opens the application
 * around each operation; containers are opened and closed here, inside the
 * call that needs them.
 *
 * Certificates: each container's signing certificate, id "c<n>s", and its
 * encryption certificate, id "c<n>e", n the container's place in
 * SKF_EnumContainer's list (0-based). A signing certificate is listed only
 * when the container's signing public key (SKF_ExportPublicKey) is the
 * certificate's; the encryption key never signs. The login certificate is
 * the signing certificate of the first usable container, SM2 before RSA.
 * The key's algorithm comes from the certificate and the public-key blob,
 * never from SKF_GetContainerType (vendors number its answers differently).
 */
#include "token/skf_int.h"

#include "token/card.h"
#include "util/hex.h"
#include "util/log.h"
#include "x509/cert.h"
#include "x509/sigenc.h"

#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PIN rules: GM/T 0016 leaves them to the vendor; CA tokens ship 6-digit
 * defaults (111111, 123456) and take letters too, up to 16 characters. */
#define SKF_PIN_MIN 6
#define SKF_PIN_MAX 16

static ukey_err skf_match(struct card *card) { return card->skf ? UKEY_OK : UKEY_ERR_TOKEN_NOT_SUPPORTED; }

/* A retry count as the library gave it; -1 when it cannot be one. */
static int retries(skf_ulong n) { return n <= 255 ? (int)n : -1; }

static ukey_err dev_info(struct skf_session *s, struct skfw_devinfo *di)
{
    unsigned char info[1024];
    skf_rv rv;
    /* research 1.2: a zeroed 1 KiB, whatever DEVINFO size the library has;
     * the strings sit at the same offsets in every layout. */
    memset(info, 0, sizeof info);
    if ((rv = s->lib->f.GetDevInfo(s->dev, info)) != SAR_OK)
        return skf_fail(s->lib, "SKF_GetDevInfo", rv);
    if (skfw_devinfo(info, sizeof info, di) != 0) {
        log_warn("skf: %s: SKF_GetDevInfo: no label and no serial number", s->lib->name);
        return UKEY_ERR_CARD_DATA_INVALID;
    }
    return UKEY_OK;
}

/* "skf-" and a hash of library path, manufacturer and serial number (the
 * label when there is none): the same device wherever it is plugged in. */
static ukey_err skf_identify(struct card *card, char id[TOKEN_ID_LEN])
{
    struct skf_session *s = card->skf;
    struct skfw_devinfo di;
    unsigned char digest[32];
    mbedtls_sha256_context ctx;
    const char *who;
    ukey_err e = dev_info(s, &di);
    if (e != UKEY_OK)
        return e;
    who = di.serial[0] ? di.serial : di.label;
    mbedtls_sha256_init(&ctx);
    mbedtls_sha256_starts_ret(&ctx, 0);
    mbedtls_sha256_update_ret(&ctx, (const unsigned char *)s->lib->path, strlen(s->lib->path) + 1);
    mbedtls_sha256_update_ret(&ctx, (const unsigned char *)di.manufacturer, strlen(di.manufacturer) + 1);
    mbedtls_sha256_update_ret(&ctx, (const unsigned char *)who, strlen(who));
    mbedtls_sha256_finish_ret(&ctx, digest);
    mbedtls_sha256_free(&ctx);
    memcpy(id, "skf-", 4);
    hex_encode(id + 4, digest, 16, 0);
    return UKEY_OK;
}

/* The container's public key (signing or encryption), read for the
 * library's ULONG width. UKEY_OK, or CARD_DATA_INVALID for a blob that
 * does not parse, or the library's error. */
static ukey_err public_key(struct skf_session *s, void *con, int sign, struct skfw_pubkey *pk)
{
    unsigned char *blob;
    size_t len;
    int abi = skf_probe(s->lib, con);
    ukey_err e = skf_export(s, con, 0, sign, &blob, &len);
    if (e == UKEY_OK && (!blob || skfw_pubkey(blob, len, abi, pk) != 0)) {
        log_warn("skf: %s: SKF_ExportPublicKey: %zu bytes that are no public key (ULONG of %d bytes)",
                 s->lib->name, len, abi);
        e = UKEY_ERR_CARD_DATA_INVALID;
    }
    free(blob);
    return e;
}

/* 1 if `der` is one certificate whose key is `pk` (SM2, or RSA-2048),
 * with *kind set and *sign saying whether it may sign (key usage). */
static int cert_key_is(const unsigned char *der, size_t len, const struct skfw_pubkey *pk, enum token_key *kind,
                       int *sign)
{
    int ecc = pk->type == SKFW_KEY_ECC;
    unsigned char xy[64];
    memcpy(xy, pk->x, 32);
    memcpy(xy + 32, pk->y, 32);
    *kind = ecc ? TOKEN_KEY_SM2 : TOKEN_KEY_RSA2048;
    return ecc ? x509_cert_key_is(der, len, X509_KEY_SM2, xy, sizeof xy, NULL, 0, sign)
               : x509_cert_key_is(der, len, X509_KEY_RSA, pk->n, sizeof pk->n, pk->e, sizeof pk->e, sign);
}

/* Adds certificate `der` (taken) as id "c<index><s|e>". */
static void add_cert(struct token *t, size_t index, int sign, const char *container, unsigned char *der, size_t len)
{
    struct token_cert *c = &t->certs[t->n_certs++];
    snprintf(c->id, sizeof c->id, "c%u%c", (unsigned)index, sign ? 's' : 'e');
    c->slot = sign ? "SKF signing" : "SKF encryption";
    snprintf(c->container, sizeof c->container, "%s", container);
    c->der = der;
    c->der_len = len;
}

/* One container's certificates into `t`. Returns the login rank of its
 * signing certificate: 2 SM2, 1 RSA, 0 none usable. */
static int read_container(struct skf_session *s, void *con, size_t index, const char *name, struct token *t)
{
    struct skfw_pubkey pk;
    unsigned char *der = NULL;
    size_t len = 0;
    enum token_key kind = TOKEN_KEY_RSA2048;
    int rank = 0, sign = 0;

    if (skf_export(s, con, 1, 1, &der, &len) == UKEY_OK && der) {
        if (public_key(s, con, 1, &pk) == UKEY_OK && cert_key_is(der, len, &pk, &kind, &sign)) {
            add_cert(t, index, 1, name, der, len);
            der = NULL;
            rank = sign ? (kind == TOKEN_KEY_SM2 ? 2 : 1) : 0;
        } else {
            log_warn("skf: %s: container \"%s\": the signing certificate is not readable or not the key's: "
                     "left out", s->lib->name, name);
        }
        free(der);
    }
    if (t->n_certs < TOKEN_MAX_CERTS && skf_export(s, con, 1, 0, &der, &len) == UKEY_OK && der) {
        int is_ca, can_sign;
        if (x509_cert_role(der, len, &is_ca, &can_sign) == 0)
            add_cert(t, index, 0, name, der, len);
        else
            free(der);
    }
    return rank;
}

static ukey_err skf_read(struct card *card, struct token *t)
{
    struct skf_session *s = card->skf;
    char names[SKFW_MAX_NAMES][SKFW_NAME_MAX];
    struct skfw_devinfo di;
    size_t n, auth = 0;
    int best = 0;
    ukey_err e;

    if ((e = skf_identify(card, t->id)) != UKEY_OK || (e = dev_info(s, &di)) != UKEY_OK)
        return e;
    snprintf(t->label, sizeof t->label, "%s", di.label[0] ? di.label : di.serial);
    snprintf(t->serial, sizeof t->serial, "%s", di.serial);
    n = skf_containers(s, names);
    for (size_t i = 0; i < n && t->n_certs < TOKEN_MAX_CERTS; i++) {
        void *con;
        size_t before = t->n_certs;
        int rank;
        if (skf_open_container(s, names[i], &con) != UKEY_OK)
            continue;
        rank = read_container(s, con, i, names[i], t);
        s->lib->f.CloseContainer(con);
        if (rank > best)
            best = rank, auth = before;
    }
    if (best > 0)
        t->certs[auth].auth = 1;
    return UKEY_OK;
}

static ukey_err skf_pin_status(struct card *card, struct token_pin *pin)
{
    struct skf_session *s = card->skf;
    skf_ulong max = 0, remain = 0, is_default = 0;
    skf_rv rv = s->lib->f.GetPINInfo(s->app, SKF_USER_TYPE, &max, &remain, &is_default);
    if (rv != SAR_OK)
        return skf_fail(s->lib, "SKF_GetPINInfo", rv);
    /* GM/T 0016 7.3.5: no tries remaining means locked. */
    pin->retries_left = retries(remain);
    pin->blocked = remain == 0;
    /* The administrator PIN unblocks the user PIN (the API's "puk"). */
    if ((rv = s->lib->f.GetPINInfo(s->app, SKF_ADMIN_TYPE, &max, &remain, &is_default)) != SAR_OK)
        return skf_fail(s->lib, "SKF_GetPINInfo", rv);
    pin->puk_retries_left = retries(remain);
    pin->puk_blocked = remain == 0;
    pin->puk_retries_low = 0;
    pin->puk_untold = 0;
    pin->retries_low = 0;
    pin->pin_pad = 0;
    pin->digits_only = 0;
    pin->min_len = SKF_PIN_MIN;
    pin->max_len = SKF_PIN_MAX;
    return UKEY_OK;
}

/* The user PIN (USER_TYPE) verified or changed, or a new one set with the
 * administrator PIN (the API's "puk"): GM/T 0016 7.3.3-7.3.6. */
static ukey_err skf_pin_op(struct card *card, enum token_pin_op op, const char *a, const char *b,
                           struct token_pin *pin)
{
    struct skf_session *s = card->skf;
    skf_ulong retry = 0;
    const char *call;
    ukey_err e;
    skf_rv rv;

    if (!a)
        return UKEY_ERR_PIN_REQUIRED; /* no PIN pad on an SKF device */
    switch (op) {
    case TOKEN_PIN_VERIFY:
        call = "SKF_VerifyPIN";
        rv = s->lib->f.VerifyPIN(s->app, SKF_USER_TYPE, a, &retry);
        break;
    case TOKEN_PIN_CHANGE:
        call = "SKF_ChangePIN";
        rv = s->lib->f.ChangePIN(s->app, SKF_USER_TYPE, a, b, &retry);
        break;
    case TOKEN_PIN_UNBLOCK:
        call = "SKF_UnblockPIN";
        rv = s->lib->f.UnblockPIN(s->app, a, b, &retry);
        break;
    default:
        return UKEY_ERR_INTERNAL;
    }
    if (rv == SAR_OK)
        return UKEY_OK;
    e = skf_fail(s->lib, call, rv);
    if (e == UKEY_ERR_PIN_INCORRECT || e == UKEY_ERR_PIN_BLOCKED) {
        int left = e == UKEY_ERR_PIN_BLOCKED ? 0 : retries(retry);
        /* For an unblock the counter is the administrator PIN's. */
        if (op == TOKEN_PIN_UNBLOCK) {
            pin->puk_retries_left = left;
            pin->puk_blocked = left == 0;
            e = e == UKEY_ERR_PIN_INCORRECT && left != 0 ? UKEY_ERR_PUK_INCORRECT : UKEY_ERR_PUK_BLOCKED;
        } else {
            pin->retries_left = left;
            pin->blocked = e == UKEY_ERR_PIN_BLOCKED || left == 0;
        }
    }
    return e;
}

/* The container of a signing certificate id "c<n>s"; its index or -1. */
static long container_of(const char *cert_id, int *encryption)
{
    char *end;
    long i;
    *encryption = 0;
    if (cert_id[0] != 'c' || cert_id[1] < '0' || cert_id[1] > '9')
        return -1;
    i = strtol(cert_id + 1, &end, 10);
    if ((*end != 's' && *end != 'e') || end[1] != '\0' || i >= SKFW_MAX_NAMES)
        return -1;
    *encryption = *end == 'e';
    return i;
}

static ukey_err sign_with(struct skf_session *s, void *con, enum token_key kind, const unsigned char *digest,
                          size_t digest_len, unsigned char *out, size_t *out_len)
{
    struct skfw_pubkey pk;
    unsigned char blob[256], raw[512];
    skf_ulong raw_len = sizeof raw;
    ukey_err e;
    skf_rv rv;
    int n;

    if ((e = public_key(s, con, 1, &pk)) != UKEY_OK)
        return e;
    if (kind == TOKEN_KEY_SM2 && pk.type == SKFW_KEY_ECC && digest_len == 32) {
        /* GM/T 0016 7.6.10: signs e = SM3(Z_A || M) as given; the blob is
         * r and s right-aligned in 64 bytes each. A zeroed buffer twice its
         * size: a library that writes more hits zeroes. */
        memset(blob, 0, sizeof blob);
        if ((rv = s->lib->f.ECCSignData(con, digest, 32, blob)) != SAR_OK)
            return skf_fail(s->lib, "SKF_ECCSignData", rv);
        if (skfw_eccsig(blob, 128, raw) != 0 || (n = sigenc_ecdsa_raw_to_der(raw, 32, out, *out_len)) < 0) {
            log_warn("skf: %s: SKF_ECCSignData: a signature blob that is no SM2 signature", s->lib->name);
            return UKEY_ERR_CARD_DATA_INVALID;
        }
        *out_len = (size_t)n;
        return UKEY_OK;
    }
    if (kind == TOKEN_KEY_RSA2048 && pk.type == SKFW_KEY_RSA && (digest_len == 32 || digest_len == 48)) {
        /* GM/T 0016 7.6.8: the device pads PKCS#1 v1.5 itself: it signs the DigestInfo. */
        unsigned char di[SIGENC_DIGEST_INFO_MAX];
        size_t di_len = sigenc_digest_info(digest_len == 48 ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA256, digest, di);
        if ((rv = s->lib->f.RSASignData(con, di, di_len, raw, &raw_len)) != SAR_OK)
            return skf_fail(s->lib, "SKF_RSASignData", rv);
        if (raw_len != pk.bits / 8 || raw_len > *out_len) {
            log_warn("skf: %s: SKF_RSASignData: %llu bytes for a %u-bit key", s->lib->name,
                     (unsigned long long)raw_len, pk.bits);
            return UKEY_ERR_CARD_DATA_INVALID;
        }
        memcpy(out, raw, (size_t)raw_len);
        *out_len = (size_t)raw_len;
        return UKEY_OK;
    }
    return UKEY_ERR_TOKEN_NOT_SUPPORTED; /* not this key's kind */
}

static ukey_err skf_sign(struct card *card, const char *cert_id, enum token_key kind, int pss,
                         const unsigned char *digest, size_t digest_len, unsigned char *out, size_t *out_len)
{
    struct skf_session *s = card->skf;
    char names[SKFW_MAX_NAMES][SKFW_NAME_MAX];
    int encryption;
    long i = container_of(cert_id, &encryption);
    void *con;
    ukey_err e;

    if (i < 0)
        return UKEY_ERR_CERT_NOT_FOUND;
    /* The encryption key is not for signing; GM/T 0016 signs PKCS#1 v1.5 only. */
    if (encryption || pss)
        return UKEY_ERR_TOKEN_NOT_SUPPORTED;
    if ((size_t)i >= skf_containers(s, names))
        return UKEY_ERR_CERT_NOT_FOUND;
    if ((e = skf_open_container(s, names[i], &con)) != UKEY_OK)
        return e;
    e = sign_with(s, con, kind, digest, digest_len, out, out_len);
    s->lib->f.CloseContainer(con);
    return e;
}

static void skf_logout(struct card *card) { card->skf->lib->f.ClearSecureState(card->skf->app); }

const struct token_driver skf_driver = {
    .name = "SKF",
    .match = skf_match,
    .identify = skf_identify,
    .read = skf_read,
    .pin_status = skf_pin_status,
    .pin_op = skf_pin_op,
    .sign = skf_sign,
    .logout = skf_logout,
};
