/*
 * ukey-vcard: a virtual smart card for tests, a PIV card (NIST SP 800-73-4)
 * or an OpenPGP card (OpenPGP card application 3.4), as its state file
 * says. It speaks the vpcd protocol to pcscd's vsmartcard reader driver, so
 * the agent and independent clients (OpenSC, yubico-piv-tool, GnuPG) reach
 * it through the real pcscd, exactly as a USB token.
 */
#ifndef UKEY_VCARD_H
#define UKEY_VCARD_H

#include <mbedtls/pk.h>
#include <stddef.h>
#include <stdio.h>

#define VCARD_SLOTS 4
#define VCARD_SECRET_MAX 127    /* OpenPGP PW1 / Resetting Code; PIV's are 8 */

enum vcard_profile { VCARD_PIV, VCARD_OPENPGP };

struct vcard_slot {
    const char *id;             /* "9a"; OpenPGP: "aut", "dec", "sig" */
    unsigned char key_ref;      /* 0x9a; OpenPGP: the CRT tag A4, B8, B6 */
    unsigned tag;               /* certificate object tag, 0x5fc105; OpenPGP: 7F21 */
    unsigned char fpr[20];      /* OpenPGP: the key's fingerprint (zeros: none) */
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
    enum vcard_profile profile;
    char pin[VCARD_SECRET_MAX + 1], puk[VCARD_SECRET_MAX + 1]; /* OpenPGP: PW1 and the Resetting Code */
    int pin_tries, pin_tries_max, puk_tries, puk_tries_max;
    unsigned char guid[16];     /* PIV */
    unsigned char serial[4];    /* OpenPGP: the AID's serial number */
    struct vcard_slot slots[VCARD_SLOTS];
    /* volatile, cleared by power off / reset */
    int selected, pin_verified; /* OpenPGP: pin_verified is PW1 mode 82 */
    int pw1_cds_verified;       /* OpenPGP: PW1 mode 81 */
    unsigned occurrence;        /* OpenPGP: SELECT DATA's occurrence of 7F21 */
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

/* apdu.c: answers one command APDU; the response (data + SW) goes to out
 * (capacity >= 258), its length to *out_len. Logging, faults, command
 * chaining and GET RESPONSE are done there; the rest goes to the profile. */
void vcard_apdu(struct vcard *card, const unsigned char *cmd, size_t len, unsigned char *out,
                size_t *out_len);
/* Clears the volatile state (power off, reset). */
void vcard_reset(struct vcard *card);

/* apdu.c: helpers for the profiles. */
size_t vcard_put_len(unsigned char *out, size_t len); /* BER length; its size */
/* Answers `data` (61xx + GET RESPONSE when over 256) with SW 9000. */
void vcard_reply_data(struct vcard *card, const unsigned char *data, size_t len, unsigned char *out,
                      size_t *out_len);
void vcard_reply_sw(unsigned sw, unsigned char *out, size_t *out_len);
/* Checks `value` against the PIN (or PUK) and its counter; returns the SW
 * (9000, 63Cx, 6983), saving the state when a counter moves. */
unsigned vcard_check_secret(struct vcard *card, const char *value, int puk);
int vcard_rng(void *ctx, unsigned char *out, size_t len);

/* A profile's commands: everything but GET RESPONSE, after chaining. */
void vcard_piv_command(struct vcard *card, unsigned char ins, unsigned char p1, unsigned char p2,
                       const unsigned char *data, size_t lc, unsigned char *out, size_t *out_len);
void vcard_openpgp_command(struct vcard *card, unsigned char ins, unsigned char p1, unsigned char p2,
                           const unsigned char *data, size_t lc, unsigned char *out, size_t *out_len);

#endif
