/*
 * The PKCS#11 backend (issue 7). Vendor modules (the .so/.dll a CA ships
 * with its UKeys) are loaded (util/dynlib.h) from `--pkcs11-module` and
 * agent.json's "pkcs11_modules"; only the standard pkcs11.h is used, no
 * link-time dependency. Each initialised token of a module appears as one
 * more slot beside the PC/SC readers, named "PKCS#11 #<n> <module> slot
 * <id>: <description>", and is driven through the ordinary driver table
 * (pkcs11_driver), so tokens.c's PIN rules and login.c's signing hold for
 * it unchanged: one session per operation, C_Logout and C_CloseSession at
 * its end.
 *
 * A module that fails to load or to initialise is recorded (p11_modules_json,
 * shown by doctor) and the agent goes on with the others.
 */
#ifndef UKEY_TOKEN_PKCS11_H
#define UKEY_TOKEN_PKCS11_H

#include "token/pcsc.h"
#include "token/token.h"
#include "util/error.h"

#include <jansson.h>
#include <stddef.h>

#define P11_MAX_MODULES 8
#define P11_MAX_SLOTS 16

/* Loads and initialises the modules (once, before any other call here).
 * Failures are kept for p11_modules_json; returns how many loaded. */
size_t p11_load(char *const *paths, size_t n);

/* How many loaded and initialised. */
size_t p11_loaded(void);

/* Finalises and unloads them (after p11_monitor_stop). */
void p11_unload(void);

/* [{"path", "loaded", "library"?, "error"?: {code, zh-CN, en, detail}}],
 * one entry per configured module, in order. */
json_t *p11_modules_json(void);

/* Lists the initialised tokens of every loaded module as readers (state
 * PRESENT, or MUTE when the module cannot describe the token; `events`
 * changes when another token is put in the slot). Returns how many, at
 * most `cap`. */
size_t p11_list(struct reader_info *out, size_t cap);

/* 1 if `reader` names a PKCS#11 slot (p11_list's naming). */
int p11_owns(const char *reader);

/* The module path of a PKCS#11 slot's name, or NULL. */
const char *p11_module_of(const char *reader);

/*
 * Opens a session on the slot `reader`, runs fn(card, arg) with card->p11
 * set, then (CARD_RESET) logs out, and closes the session. Operations take
 * turns, each waiting at most PCSC_WAIT_S. Returns fn's result, or
 * TOKEN_BUSY, TOKEN_NOT_FOUND, TOKEN_REMOVED, CARD_ERROR.
 */
ukey_err p11_with_slot(const char *reader, enum card_end end, ukey_err (*fn)(struct card *card, void *arg),
                       void *arg);

/*
 * Watches every loaded module for tokens coming and going: with
 * C_WaitForSlotEvent where the module supports it, else by listing its
 * slots with a back-off from 1 to 8 s. Calls cb with PCSC_CARD_INSERTED /
 * PCSC_CARD_REMOVED and the slot's reader name. Returns 0 or -1.
 */
int p11_monitor_start(void (*cb)(enum pcsc_event ev, const char *reader, void *arg), void *arg);
void p11_monitor_stop(void);

extern const struct token_driver pkcs11_driver;

#endif
