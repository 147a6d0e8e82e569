/*
 * Inside the SKF backend: the library table skf.c loads and skf_driver.c
 * drives. Nothing outside these two files includes it.
 *
 * The ABI is our own view of GM/T 0016's prototypes, right for both
 * widths of ULONG vendors use (research sm2-skf-sof.md 1.2), on the
 * little-endian hosts the agent runs on (x86-64, aarch64):
 * - a ULONG or BOOL passed by value goes as 64 bits: a 32-bit callee reads
 *   the low half of the register;
 * - a ULONG returned is read as 32 bits: every SAR_* code fits, and the
 *   upper half of a 32-bit callee's return register is undefined;
 * - a ULONG* or BOOL* out-parameter points to a zeroed 64-bit variable, so
 *   an 8-byte writer cannot overrun it and a 4-byte writer leaves the
 *   upper half zero: the value reads right either way.
 * Only the blobs' layouts depend on the width; skf_probe finds it.
 */
#ifndef UKEY_TOKEN_SKF_INT_H
#define UKEY_TOKEN_SKF_INT_H

#include "token/skf.h"
#include "token/skfwire.h"
#include "token/vendorlib.h"

#include <stdatomic.h>
#include <stdint.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "skf_int.h reads a 4-byte ULONG from an 8-byte variable");

typedef uint32_t skf_rv;
typedef uint64_t skf_ulong;

/* GM/T 0016 constants (research 1.5, 1.6). */
#define SKF_ADMIN_TYPE 0
#define SKF_USER_TYPE 1
#define SAR_OK 0x00000000u
#define SAR_KEYNOTFOUNTERR 0x0A00001Bu
#define SAR_CERTNOTFOUNTERR 0x0A00001Cu
#define SAR_PIN_INCORRECT 0x0A000024u
#define SAR_PIN_LOCKED 0x0A000025u

/* The functions the backend calls (GM/T 0016 7.x), as skf_int.h's header
 * comment says they are called. Required unless marked optional. */
struct skf_fns {
    skf_rv (*EnumDev)(skf_ulong present, char *names, skf_ulong *size);
    skf_rv (*ConnectDev)(const char *name, void **dev);
    skf_rv (*DisConnectDev)(void *dev);
    skf_rv (*GetDevInfo)(void *dev, void *info);
    skf_rv (*EnumApplication)(void *dev, char *names, skf_ulong *size);
    skf_rv (*OpenApplication)(void *dev, const char *name, void **app);
    skf_rv (*CloseApplication)(void *app);
    skf_rv (*GetPINInfo)(void *app, skf_ulong type, skf_ulong *max, skf_ulong *remain, skf_ulong *is_default);
    skf_rv (*VerifyPIN)(void *app, skf_ulong type, const char *pin, skf_ulong *retry);
    skf_rv (*ChangePIN)(void *app, skf_ulong type, const char *old_pin, const char *new_pin, skf_ulong *retry);
    skf_rv (*UnblockPIN)(void *app, const char *admin_pin, const char *new_pin, skf_ulong *retry);
    skf_rv (*ClearSecureState)(void *app);
    skf_rv (*EnumContainer)(void *app, char *names, skf_ulong *size);
    skf_rv (*OpenContainer)(void *app, const char *name, void **con);
    skf_rv (*CloseContainer)(void *con);
    skf_rv (*ExportCertificate)(void *con, skf_ulong sign, unsigned char *cert, skf_ulong *len);
    skf_rv (*ExportPublicKey)(void *con, skf_ulong sign, unsigned char *blob, skf_ulong *len);
    skf_rv (*ECCSignData)(void *con, const unsigned char *data, skf_ulong len, unsigned char *sig);
    skf_rv (*RSASignData)(void *con, const unsigned char *data, skf_ulong len, unsigned char *sig, skf_ulong *sig_len);
    /* optional: device events */
    skf_rv (*WaitForDevEvent)(char *name, skf_ulong *len, skf_ulong *event);
    skf_rv (*CancelWaitForDevEvent)(void);
};

struct skf_lib {
    char path[512];
    const char *name;           /* the file name part of path */
    struct dynlib *dl;
    struct skf_fns f;
    ukey_err err;               /* UKEY_OK when loaded */
    char detail[192];           /* English: why not */
    atomic_int abi;             /* sizeof ULONG: 4 or 8, 0 until probed */
    struct vlib v;
};

/* The device an operation runs on (card->skf): connected, its application
 * open. */
struct skf_session {
    struct skf_lib *lib;
    void *dev;
    void *app;
};

/* A failed call, logged with its code (name and hex), as the agent's
 * error; the one translation of SAR_* codes. */
ukey_err skf_fail(const struct skf_lib *l, const char *call, skf_rv rv);

/* The application's container names (at most SKFW_MAX_NAMES); how many. */
size_t skf_containers(struct skf_session *s, char names[SKFW_MAX_NAMES][SKFW_NAME_MAX]);

/* Learns the library's ULONG width from an open container, once (the
 * length of its signing public-key blob). Returns the width, 0 if unknown. */
int skf_probe(struct skf_lib *l, void *con);

/* Opens container `name`; UKEY_OK or the library's error. */
ukey_err skf_open_container(struct skf_session *s, const char *name, void **con);

/* A variable-length output (certificate, blob): the size asked with a NULL
 * buffer, capped at SKFW_LIST_MAX, then the bytes, malloc'd into *out
 * (NULL when the library has none: SAR_CERTNOTFOUNTERR and the like).
 * UKEY_OK, OUT_OF_MEMORY, CARD_DATA_INVALID or the library's error. */
ukey_err skf_export(struct skf_session *s, void *con, int cert, int sign, unsigned char **out, size_t *len);

#endif
