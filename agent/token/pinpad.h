/*
 * Secure PIN entry on the reader's own keypad (PC/SC Part 10 v2.02.09,
 * "IFDs with Secure PIN Entry Capabilities"): reading the reader's feature
 * list and building the PIN_VERIFY / PIN_MODIFY structures that go to it
 * with SCardControl. Pure functions over bytes, no PC/SC: pcsc.c sends what
 * is built here, and every driver builds with its own parameters.
 */
#ifndef UKEY_TOKEN_PINPAD_H
#define UKEY_TOKEN_PINPAD_H

#include "util/error.h"

#include <stddef.h>
#include <stdint.h>

/* PC/SC Part 10: the feature tags this agent uses. */
#define PINPAD_FEATURE_VERIFY_PIN_DIRECT 0x06
#define PINPAD_FEATURE_MODIFY_PIN_DIRECT 0x07
#define PINPAD_FEATURE_IFD_PIN_PROPERTIES 0x0A

/* What the agent asks readers for: 30 s to type, prompts in Simplified
 * Chinese (USB language id 0x0804), the entry ends with the OK key. */
#define PINPAD_TIMEOUT_S 30
#define PINPAD_LANG_ZH_CN 0x0804
#define PINPAD_VALIDATE_OK_KEY 0x02

/* Longest structure pinpad_build_* writes: the modify header (24 bytes) and
 * a short APDU (5 + 255). */
#define PINPAD_MAX_STRUCT (24 + 5 + 255)

/* The control codes a reader gave for its features; 0 = not offered. */
struct pinpad_features {
    uint32_t verify;            /* FEATURE_VERIFY_PIN_DIRECT */
    uint32_t modify;            /* FEATURE_MODIFY_PIN_DIRECT */
    uint32_t properties;        /* FEATURE_IFD_PIN_PROPERTIES */
};

/*
 * Reads the answer to CM_IOCTL_GET_FEATURE_REQUEST: a list of
 *   tag (1 byte) | length (1 byte, always 4) | control code (4 bytes, big-endian)
 * (PC/SC Part 10, GET_FEATURE_REQUEST). Fills *out (zeroed first). An
 * empty list is a reader without features. Returns 0, or -1 for a malformed list (a length other
 * than 4, a truncated entry, a control code of 0), with *out all zero.
 */
int pinpad_parse_features(const unsigned char *buf, size_t len, struct pinpad_features *out);

/* PC/SC Part 10 PIN_PROPERTIES_STRUCTURE. */
struct pinpad_properties {
    unsigned lcd_layout;        /* wLcdLayout: 0 = no display, else lines << 8 | characters */
    unsigned validation;        /* bEntryValidationCondition the reader supports */
    unsigned timeout2;          /* bTimeOut2 */
};

/* Reads the answer to FEATURE_IFD_PIN_PROPERTIES (at least 4 bytes; newer
 * readers append fields, which are ignored). Returns 0 or -1. */
int pinpad_parse_properties(const unsigned char *buf, size_t len, struct pinpad_properties *out);

enum pinpad_format { PINPAD_BINARY = 0, PINPAD_BCD = 1, PINPAD_ASCII = 2 };

/*
 * One PIN command the reader completes with what the user types. The
 * reader writes the PIN from the start of its block, left-justified, over a
 * template filled with `pad` (so PIV's FF padding stays where the PIN ends).
 */
struct pinpad_params {
    unsigned char header[4];    /* CLA INS P1 P2 */
    size_t block_len;           /* bytes of one PIN block (1..15); Lc = one block (verify) or two (modify) */
    enum pinpad_format format;
    unsigned char pad;          /* the byte the block holds after the PIN */
    unsigned min_len, max_len;  /* digits the reader accepts (1..255, min <= max) */
    unsigned timeout_s;         /* 0: the reader's default; at most 255 */
    unsigned lang_id;           /* USB language id of the reader's prompts */
    unsigned validation;        /* bEntryValidationCondition, e.g. PINPAD_VALIDATE_OK_KEY */
};

/*
 * Builds PIN_VERIFY_STRUCTURE (PC/SC Part 10) for `p` into
 * out[0..cap). Returns its length, or 0 when a parameter is out of range
 * (a PIN longer than its block, a block over 15 bytes, a timeout over
 * 255 s...) or `cap` is too small.
 */
size_t pinpad_build_verify(const struct pinpad_params *p, unsigned char *out, size_t cap);

/*
 * Builds PIN_MODIFY_STRUCTURE (PC/SC Part 10) for a CHANGE
 * REFERENCE DATA whose data is the old PIN block then the new one; the
 * reader asks for the old PIN, the new PIN and the new PIN again. Returns
 * its length or 0, like pinpad_build_verify.
 */
size_t pinpad_build_modify(const struct pinpad_params *p, unsigned char *out, size_t cap);

/*
 * The status words the reader itself answers instead of the card's
 * (PC/SC Part 10, FEATURE_VERIFY_PIN_DIRECT): 6400 timeout ->
 * PIN_PAD_TIMEOUT, 6401 cancelled -> PIN_PAD_CANCELLED, 6402 the new PINs
 * differ and 6403 a PIN of the wrong length -> PIN_FORMAT (nothing reached
 * the card), 6B80 the reader refused the structure -> CARD_ERROR. UKEY_OK for any other word: it is
 * the card's.
 */
ukey_err pinpad_reader_sw(unsigned sw);

#endif
