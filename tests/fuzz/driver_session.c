/* The replay transport and the session of the driver fuzz targets; see
 * driver_session.h. Linked with the drivers, apdu.c and tlv.c only
 * (tests/CMakeLists.txt): this file is the card. */
#include "driver_session.h"

#include "token/apdu.h"
#include "token/pcsc.h"
#include "token/pinpad.h"

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

/* The reader here always has a PIN pad. */
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

void driver_session(const struct token_driver *d, const char *cert_id, const uint8_t *data, size_t size)
{
    static const enum token_key kinds[] = {TOKEN_KEY_P256, TOKEN_KEY_RSA2048, TOKEN_KEY_P384};
    struct token t;
    struct token_pin pin;
    char id[TOKEN_ID_LEN];
    unsigned char digest[48] = {1}, sig[512];

    in = data;
    in_left = size;
    memset(&t, 0, sizeof t);
    if (d->match(NULL) != UKEY_OK)
        return;
    d->identify(NULL, id);
    if (d->read(NULL, &t) == UKEY_OK && t.n_certs > TOKEN_MAX_CERTS)
        __builtin_trap();
    d->pin_status(NULL, &pin);
    if (d->pin_op(NULL, TOKEN_PIN_VERIFY, "123456", NULL, &pin) == UKEY_OK) {
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            size_t sig_len = sizeof sig;
            d->sign(NULL, cert_id, kinds[k], 0, digest, kinds[k] == TOKEN_KEY_P384 ? 48 : 32, sig, &sig_len);
            if (sig_len > sizeof sig)
                __builtin_trap();
        }
    }
    d->pin_op(NULL, TOKEN_PIN_UNBLOCK, "12345678", "654321", &pin);
    d->logout(NULL);
    d->pin_op(NULL, TOKEN_PIN_VERIFY, NULL, NULL, &pin); /* on the PIN pad */
    for (size_t i = 0; i < t.n_certs && i < TOKEN_MAX_CERTS; i++)
        free(t.certs[i].der);
}
