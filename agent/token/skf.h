/*
 * The SKF backend (GM/T 0016, issue 14): the vendor libraries Chinese CAs
 * ship with their SM2/SM3 UKeys, loaded (util/dynlib.h) from `--skf-module`
 * and agent.json's "skf_modules"; no vendor header, no link-time
 * dependency. Each device a library lists appears as one more slot beside
 * the PC/SC readers and PKCS#11 slots, named
 * "SKF #<n> <library> device <device name>", and is driven through the
 * ordinary driver table (skf_driver), so tokens.c's PIN rules and login.c's
 * signing hold for it unchanged: every operation connects to the device,
 * opens its application, and at its end clears the security state
 * (SKF_ClearSecureState) and closes what it opened.
 *
 * A library is called as vendorlib.h says (one call at a time, listings on
 * its own thread, a stuck library left aside), and the width of its ULONG
 * (4 bytes in the spec, 8 in some LP64 vendor headers) is probed, not
 * assumed: skf_int.h. A library that fails to load is recorded
 * (skf_modules_json, shown by doctor) and the agent goes on.
 */
#ifndef UKEY_TOKEN_SKF_H
#define UKEY_TOKEN_SKF_H

#include "token/pcsc.h"
#include "token/token.h"
#include "util/error.h"

#include <jansson.h>
#include <stddef.h>

#define SKF_MAX_LIBS 8
#define SKF_MAX_DEVICES 16

/* Loads the libraries (once, before any other call here). Failures are
 * kept for skf_modules_json; returns how many loaded. */
size_t skf_load(char *const *paths, size_t n);

/* How many loaded. */
size_t skf_loaded(void);

/* Stops using them (after skf_monitor_stop). */
void skf_unload(void);

/* [{"path", "loaded", "abi": "ulong32" | "ulong64" | null, "error"?: {code,
 * zh-CN, en, detail}}], one entry per configured library, in order. "abi"
 * is null until a container has been seen. */
json_t *skf_modules_json(void);

/* Lists the present devices of every loaded library as readers (state
 * PRESENT, or MUTE when the device cannot be described). Returns how many,
 * at most `cap`. */
size_t skf_list(struct reader_info *out, size_t cap);

/* 1 if `reader` names an SKF device (skf_list's naming). */
int skf_owns(const char *reader);

/* The library path of an SKF device's name, or NULL. */
const char *skf_module_of(const char *reader);

/*
 * Connects to the device `reader` and opens its application, runs
 * fn(card, arg) with card->skf set, then (CARD_RESET) clears the security
 * state, and closes both. Operations take turns, each waiting at most
 * VLIB_WAIT_S. Returns fn's result, or TOKEN_BUSY, MODULE_FAILED (a stuck
 * library), TOKEN_NOT_FOUND, TOKEN_REMOVED, TOKEN_NOT_SUPPORTED (no
 * application), CARD_ERROR.
 */
ukey_err skf_with_device(const char *reader, enum card_end end, ukey_err (*fn)(struct card *card, void *arg),
                         void *arg);

/*
 * Watches every loaded library for devices coming and going: with
 * SKF_WaitForDevEvent where the library exports it (cancelled with
 * SKF_CancelWaitForDevEvent at stop), else by listing with a back-off
 * from 1 to 8 s. Calls cb with PCSC_CARD_INSERTED / PCSC_CARD_REMOVED and
 * the device's reader name. Returns 0 or -1.
 */
int skf_monitor_start(void (*cb)(enum pcsc_event ev, const char *reader, void *arg), void *arg);
void skf_monitor_stop(void);

extern const struct token_driver skf_driver;

#endif
