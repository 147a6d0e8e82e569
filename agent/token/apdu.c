/* APDU exchange and ISO 7816 status words; see apdu.h. */
#include "token/apdu.h"

#include "util/log.h"

#include <string.h>

static const struct {
    unsigned sw, mask;
    const char *text;
    ukey_err err;
} iso7816_errors[] = {
    {0x9000, 0xffff, "success", UKEY_OK},
    {0x6100, 0xff00, "more data available", UKEY_OK},
    {0x63c0, 0xfff0, "verification failed, retries left in low nibble", UKEY_ERR_PIN_INCORRECT},
    {0x6581, 0xffff, "memory failure", UKEY_ERR_CARD_ERROR},
    {0x6700, 0xffff, "wrong length", UKEY_ERR_CARD_ERROR},
    {0x6882, 0xffff, "secure messaging not supported", UKEY_ERR_TOKEN_NOT_SUPPORTED},
    {0x6982, 0xffff, "security status not satisfied", UKEY_ERR_PIN_INCORRECT},
    {0x6983, 0xffff, "authentication method blocked", UKEY_ERR_PIN_BLOCKED},
    {0x6984, 0xffff, "reference data not usable", UKEY_ERR_CARD_ERROR},
    {0x6985, 0xffff, "conditions of use not satisfied", UKEY_ERR_CARD_ERROR},
    {0x6a80, 0xffff, "incorrect parameters in the data field", UKEY_ERR_CARD_ERROR},
    {0x6a81, 0xffff, "function not supported", UKEY_ERR_TOKEN_NOT_SUPPORTED},
    {0x6a82, 0xffff, "file or application not found", UKEY_ERR_TOKEN_NOT_SUPPORTED},
    {0x6a86, 0xffff, "incorrect P1 P2", UKEY_ERR_CARD_ERROR},
    {0x6a88, 0xffff, "referenced data not found", UKEY_ERR_CARD_ERROR},
    {0x6d00, 0xffff, "instruction not supported", UKEY_ERR_TOKEN_NOT_SUPPORTED},
    {0x6e00, 0xffff, "class not supported", UKEY_ERR_TOKEN_NOT_SUPPORTED},
    {0x6f00, 0xff00, "no precise diagnosis", UKEY_ERR_CARD_ERROR},
};

static size_t sw_index(unsigned sw)
{
    for (size_t i = 0; i < sizeof iso7816_errors / sizeof iso7816_errors[0]; i++)
        if ((sw & iso7816_errors[i].mask) == iso7816_errors[i].sw)
            return i;
    return (size_t)-1;
}

const char *iso7816_sw_text(unsigned sw)
{
    size_t i = sw_index(sw);
    return i == (size_t)-1 ? "unknown status word" : iso7816_errors[i].text;
}

ukey_err iso7816_error(unsigned sw)
{
    size_t i = sw_index(sw);
    /* Only 9000 is success: a 61xx left over (a chained block answered
     * "more data", found by fuzz_piv) is a card error to a driver. */
    if (i == (size_t)-1 || (iso7816_errors[i].err == UKEY_OK && sw != SW_OK))
        return UKEY_ERR_CARD_ERROR;
    return iso7816_errors[i].err;
}

/* Sends one short APDU; resp must hold 258 bytes. */
static ukey_err send_one(struct card *card, unsigned char cla, const struct apdu *cmd,
                         const unsigned char *data, size_t len, int le, unsigned char *resp,
                         size_t *resp_len)
{
    unsigned char buf[5 + 255 + 1];
    size_t n = 0;
    buf[n++] = cla;
    buf[n++] = cmd->ins;
    buf[n++] = cmd->p1;
    buf[n++] = cmd->p2;
    if (len > 0) {
        buf[n++] = (unsigned char)len;
        memcpy(buf + n, data, len);
        n += len;
    }
    if (le >= 0)
        buf[n++] = (unsigned char)le;
    *resp_len = 258;
    return card_transmit(card, buf, n, resp, resp_len);
}

ukey_err apdu_run(struct card *card, const struct apdu *cmd, unsigned char *out, size_t cap,
                  size_t *out_len, unsigned *sw)
{
    unsigned char resp[258];
    size_t resp_len, off = 0, got = 0;
    ukey_err e;

    *out_len = 0;
    *sw = 0;
    /* Command chaining: every block but the last has CLA bit 0x10. */
    do {
        size_t chunk = cmd->len - off > 255 ? 255 : cmd->len - off;
        int last = off + chunk == cmd->len;
        /* No arithmetic on a NULL data pointer (a status-only VERIFY has
         * none; found by fuzz_piv under clang's UBSan). */
        e = send_one(card, last ? cmd->cla : (unsigned char)(cmd->cla | 0x10), cmd,
                     cmd->data ? cmd->data + off : NULL, chunk, last ? cmd->le : -1, resp, &resp_len);
        if (e != UKEY_OK)
            return e;
        off += chunk;
        *sw = (unsigned)(resp[resp_len - 2] << 8 | resp[resp_len - 1]);
        if (!last && *sw != SW_OK)
            return UKEY_OK;
    } while (off < cmd->len);

    if ((*sw & 0xff00) == 0x6c00 && cmd->len <= 255) {
        /* Wrong Le: the card says how many bytes it has. */
        e = send_one(card, cmd->cla, cmd, cmd->data, cmd->len, (int)(*sw & 0xff), resp, &resp_len);
        if (e != UKEY_OK)
            return e;
        *sw = (unsigned)(resp[resp_len - 2] << 8 | resp[resp_len - 1]);
    }
    for (;;) {
        size_t n = resp_len - 2;
        if (got + n > cap) {
            log_debug("apdu: response over %zu bytes refused", cap);
            return UKEY_ERR_CARD_DATA_INVALID;
        }
        memcpy(out + got, resp, n);
        got += n;
        if ((*sw & 0xff00) != 0x6100)
            break;
        /* ISO 7816-4 7.6.1 GET RESPONSE */
        {
            static const struct apdu get_response = {0x00, 0xc0, 0x00, 0x00, NULL, 0, 0};
            e = send_one(card, 0x00, &get_response, NULL, 0, (int)(*sw & 0xff), resp, &resp_len);
            if (e != UKEY_OK)
                return e;
            *sw = (unsigned)(resp[resp_len - 2] << 8 | resp[resp_len - 1]);
        }
    }
    *out_len = got;
    return UKEY_OK;
}

void iso7816_logout(struct card *card, unsigned char ref)
{
    struct apdu cmd = {0x00, 0x20, 0xff, ref, NULL, 0, -1};
    unsigned char resp[64];
    size_t len;
    unsigned sw;
    apdu_run(card, &cmd, resp, sizeof resp, &len, &sw);
}
