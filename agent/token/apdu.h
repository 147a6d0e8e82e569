/*
 * Command/response APDUs (ISO/IEC 7816-4 5.1) over a PC/SC card, and the one
 * table of ISO 7816 status words.
 */
#ifndef UKEY_TOKEN_APDU_H
#define UKEY_TOKEN_APDU_H

#include "token/pcsc.h"
#include "util/error.h"

#include <stddef.h>

#define SW_OK 0x9000u

/* Most data one response may gather through GET RESPONSE: card data is
 * capped so that a hostile card cannot make the agent grow without bound. */
#define APDU_MAX_RESPONSE (16u * 1024)

struct apdu {
    unsigned char cla, ins, p1, p2;
    const unsigned char *data;  /* command data, any length (chained when > 255) */
    size_t len;
    int le;                     /* expected length: -1 for none, 0 for "up to 256" */
};

/*
 * Sends `cmd` (command chaining for long data, ISO 7816-4 5.1.1) and gathers
 * the response (61xx -> GET RESPONSE, 6Cxx -> resend with the right Le) into
 * out[0..cap). Sets *out_len and *sw. Returns UKEY_OK whatever the status
 * word; TOKEN_REMOVED / CARD_ERROR for transport failures; CARD_DATA_INVALID
 * when the response would exceed `cap`.
 */
ukey_err apdu_run(struct card *card, const struct apdu *cmd, unsigned char *out, size_t cap,
                  size_t *out_len, unsigned *sw);

/* What a status word means, for logs and reports ("6983 authentication method blocked"). */
const char *iso7816_sw_text(unsigned sw);

/* The generic error for a status word a driver did not expect; UKEY_OK
 * for 9000 only. */
ukey_err iso7816_error(unsigned sw);

/* ISO 7816-4 VERIFY with P1=FF and no data: drops the verified state of the
 * reference `ref` (PIV 80, OpenPGP PW1 82). Cards that refuse it are reset
 * by the caller anyway; the answer is not looked at. */
void iso7816_logout(struct card *card, unsigned char ref);

#endif
