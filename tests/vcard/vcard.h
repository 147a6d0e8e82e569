/*
 * ukey-vcard: a virtual PIV card (NIST SP 800-73-4) for tests. It speaks
 * the vpcd protocol to pcscd's vsmartcard reader driver, so the agent and
 * independent clients (OpenSC, yubico-piv-tool) reach it through the real
 * pcscd, exactly as a USB token.
 */
#ifndef UKEY_VCARD_H
#define UKEY_VCARD_H

#include <mbedtls/pk.h>
#include <stddef.h>
#include <stdio.h>

#define VCARD_SLOTS 4

struct vcard_slot {
    const char *id;             /* "9a" */
    unsigned char key_ref;      /* 0x9a */
    unsigned tag;               /* certificate object tag, 0x5fc105 */
    unsigned char *cert;        /* DER, or NULL */
    size_t cert_len;
    mbedtls_pk_context key;
    int has_key;
};

struct vcard_faults {
    unsigned slow_ms;           /* delay before every answer */
    long remove_after;          /* disappear in the middle of APDU n+1 (-1: never) */
    int sw_ins;                 /* answer this INS with sw_value (-1: never) */
    unsigned sw_value;
    int bad_tlv;                /* certificate objects with an impossible length */
    int truncate;               /* certificate objects cut in half */
};

struct vcard {
    /* persistent, from the state file */
    const char *state_path;
    char pin[9], puk[9];
    int pin_tries, pin_tries_max, puk_tries, puk_tries_max;
    unsigned char guid[16];
    struct vcard_slot slots[VCARD_SLOTS];
    /* volatile, cleared by power off / reset */
    int selected, pin_verified;
    unsigned char *pending;     /* response bytes still to be fetched with GET RESPONSE */
    size_t pending_len, pending_off;
    unsigned char chain[4096];  /* command chaining buffer */
    size_t chain_len;
    /* test aids */
    struct vcard_faults faults;
    FILE *log;
    long apdus;
};

/* state.c: loads/saves the JSON state file; -1 with a message on stderr. */
int vcard_state_load(struct vcard *card, const char *path);
int vcard_state_save(const struct vcard *card);
void vcard_state_free(struct vcard *card);

/* piv.c: answers one command APDU; the response (data + SW) goes to out
 * (capacity >= 258), its length to *out_len. */
void vcard_apdu(struct vcard *card, const unsigned char *cmd, size_t len, unsigned char *out,
                size_t *out_len);
/* Clears the volatile state (power off, reset). */
void vcard_reset(struct vcard *card);

#endif
