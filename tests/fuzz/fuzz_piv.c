/* Fuzz target: the PIV driver reading a card (issue 8: "TLV/APDU response
 * parsing of each card driver, through a replay transport that feeds
 * recorded + mutated card answers"). The input is the card's side of a
 * session: answers, each as a 2-byte big-endian length and the bytes
 * (data + SW1 SW2). They go, in order, to whatever the driver sends:
 * SELECT, identify, read (CHUID and every certificate object), PIN status,
 * VERIFY, GENERAL AUTHENTICATE, logout and a VERIFY on a PIN pad (the
 * reader here always has one). Linked with the driver, apdu.c, pinpad.c
 * and tlv.c only (tests/CMakeLists.txt): this file is the transport. */
#include "token/apdu.h"
#include "token/pcsc.h"
#include "token/pinpad.h"
#include "token/token.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t *in;
static size_t in_left;

ukey_err card_transmit(struct card *card, const unsigned char *cmd, size_t cmd_len, unsigned char *resp,
                       size_t *resp_len)
{
    size_t n;
    (void)card;
    (void)cmd;
    (void)cmd_len;
    if (in_left < 2)
        return UKEY_ERR_CARD_ERROR; /* the card went quiet */
    n = (size_t)in[0] << 8 | in[1];
    in += 2;
    in_left -= 2;
    if (n > in_left)
        n = in_left;
    if (n > *resp_len)
        n = *resp_len;
    memcpy(resp, in, n);
    *resp_len = n;
    in += n;
    in_left -= n;
    return n >= 2 ? UKEY_OK : UKEY_ERR_CARD_ERROR;
}

ukey_err card_pin_pad(struct card *card, int *has_pad)
{
    (void)card;
    *has_pad = 1;
    return UKEY_OK;
}

/* The reader's answer is the next one in the input, as for card_transmit. */
ukey_err card_verify_pin_pad(struct card *card, const struct pinpad_params *p, unsigned *sw)
{
    unsigned char cmd[PINPAD_MAX_STRUCT], resp[258];
    size_t len = sizeof resp;
    ukey_err e;
    if (!pinpad_build_verify(p, cmd, sizeof cmd))
        __builtin_trap(); /* the driver's parameters must always build */
    if ((e = card_transmit(card, cmd, 0, resp, &len)) != UKEY_OK)
        return e;
    *sw = (unsigned)resp[len - 2] << 8 | resp[len - 1];
    return pinpad_reader_sw(*sw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct token_driver *d = &piv_driver;
    struct token t;
    struct token_pin pin;
    char id[TOKEN_ID_LEN];
    unsigned char digest[32] = {1}, sig[512];
    size_t sig_len = sizeof sig;

    in = data;
    in_left = size;
    memset(&t, 0, sizeof t);
    if (d->match(NULL) != UKEY_OK)
        return 0;
    d->identify(NULL, id);
    if (d->read(NULL, &t) == UKEY_OK && t.n_certs > TOKEN_MAX_CERTS)
        __builtin_trap();
    d->pin_status(NULL, &pin);
    if (d->pin_op(NULL, TOKEN_PIN_VERIFY, "123456", NULL, &pin) == UKEY_OK)
        d->sign(NULL, "9a", TOKEN_KEY_P256, 0, digest, sizeof digest, sig, &sig_len);
    if (sig_len > sizeof sig)
        __builtin_trap();
    d->logout(NULL);
    d->pin_op(NULL, TOKEN_PIN_VERIFY, NULL, NULL, &pin);
    for (size_t i = 0; i < t.n_certs; i++)
        free(t.certs[i].der);
    return 0;
}
