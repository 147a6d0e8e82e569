/* PC/SC Part 10 feature lists and PIN structures; see pinpad.h. */
#include "token/pinpad.h"

#include <string.h>

int pinpad_parse_features(const unsigned char *buf, size_t len, struct pinpad_features *out)
{
    memset(out, 0, sizeof *out);
    for (size_t off = 0; off < len;) {
        uint32_t code;
        unsigned tag;
        if (len - off < 2 || buf[off + 1] != 4 || len - off - 2 < 4)
            goto bad;
        tag = buf[off];
        code = (uint32_t)buf[off + 2] << 24 | (uint32_t)buf[off + 3] << 16 | (uint32_t)buf[off + 4] << 8 |
               (uint32_t)buf[off + 5];
        if (code == 0)
            goto bad;
        /* The first entry of a tag counts; other tags are not ours. */
        if (tag == PINPAD_FEATURE_VERIFY_PIN_DIRECT && !out->verify)
            out->verify = code;
        else if (tag == PINPAD_FEATURE_MODIFY_PIN_DIRECT && !out->modify)
            out->modify = code;
        else if (tag == PINPAD_FEATURE_IFD_PIN_PROPERTIES && !out->properties)
            out->properties = code;
        off += 6;
    }
    return 0;
bad:
    memset(out, 0, sizeof *out);
    return -1;
}

int pinpad_parse_properties(const unsigned char *buf, size_t len, struct pinpad_properties *out)
{
    /*
     * PIN_PROPERTIES_STRUCTURE:
     *   wLcdLayout (2, little-endian) | bEntryValidationCondition (1) | bTimeOut2 (1) | ...
     */
    memset(out, 0, sizeof *out);
    if (len < 4)
        return -1;
    out->lcd_layout = (unsigned)buf[0] | (unsigned)buf[1] << 8;
    out->validation = buf[2];
    out->timeout2 = buf[3];
    return 0;
}

/* The parameters both structures need, in range. */
static int params_valid(const struct pinpad_params *p, size_t blocks)
{
    size_t digits = p->format == PINPAD_BCD ? 2 * p->block_len : p->block_len;
    return p->block_len >= 1 && p->block_len <= 15 && blocks * p->block_len <= 255 &&
           (p->format == PINPAD_BINARY || p->format == PINPAD_BCD || p->format == PINPAD_ASCII) &&
           p->min_len >= 1 && p->min_len <= p->max_len && p->max_len <= 255 && p->max_len <= digits &&
           p->timeout_s <= 255 && p->lang_id <= 0xffff && p->validation <= 0xff;
}

static void put_le16(unsigned char *out, unsigned v)
{
    out[0] = (unsigned char)(v & 0xff);
    out[1] = (unsigned char)(v >> 8 & 0xff);
}

static void put_le32(unsigned char *out, size_t v)
{
    for (int i = 0; i < 4; i++)
        out[i] = (unsigned char)(v >> (8 * i) & 0xff);
}

/* The APDU the reader completes: header, Lc, `blocks` PIN blocks of `pad`. */
static size_t put_apdu(const struct pinpad_params *p, size_t blocks, unsigned char *out)
{
    size_t lc = blocks * p->block_len;
    memcpy(out, p->header, 4);
    out[4] = (unsigned char)lc;
    memset(out + 5, p->pad, lc);
    return 5 + lc;
}

/* bmFormatString: bit 7 system units are bytes, bits 6-3 the PIN's position
 * in the data field (0), bit 2 left-justified (0), bits 1-0 the format. */
static unsigned char format_string(const struct pinpad_params *p)
{
    return (unsigned char)(0x80 | p->format);
}

size_t pinpad_build_verify(const struct pinpad_params *p, unsigned char *out, size_t cap)
{
    /*
     * PIN_VERIFY_STRUCTURE, multi-byte fields little-endian:
     *   0 bTimerOut          1 bTimerOut2          2 bmFormatString
     *   3 bmPINBlockString   4 bmPINLengthFormat   5 wPINMaxExtraDigit (max, min)
     *   7 bEntryValidationCondition               8 bNumberMessage
     *   9 wLangId           11 bMsgIndex          12 bTeoPrologue[3]
     *  15 ulDataLength      19 abData (the APDU)
     */
    size_t n = 19;
    if (!params_valid(p, 1) || cap < n + 5 + p->block_len)
        return 0;
    out[0] = (unsigned char)p->timeout_s;
    out[1] = (unsigned char)p->timeout_s;
    out[2] = format_string(p);
    out[3] = (unsigned char)p->block_len;  /* bits 7-4: no PIN length field; 3-0: block size */
    out[4] = 0x00;                         /* (so no position for one either) */
    put_le16(out + 5, p->min_len << 8 | p->max_len);
    out[7] = (unsigned char)p->validation;
    out[8] = 0x01;                         /* one message: "enter the PIN" */
    put_le16(out + 9, p->lang_id);
    out[11] = 0x00;
    memset(out + 12, 0, 3);                /* T=1 prologue: the reader fills it */
    n += put_apdu(p, 1, out + n);
    put_le32(out + 15, n - 19);
    return n;
}

size_t pinpad_build_modify(const struct pinpad_params *p, unsigned char *out, size_t cap)
{
    /*
     * PIN_MODIFY_STRUCTURE, multi-byte fields little-endian:
     *   0 bTimerOut           1 bTimerOut2          2 bmFormatString
     *   3 bmPINBlockString    4 bmPINLengthFormat   5 bInsertionOffsetOld
     *   6 bInsertionOffsetNew 7 wPINMaxExtraDigit   9 bConfirmPIN
     *  10 bEntryValidationCondition                11 bNumberMessage
     *  12 wLangId            14 bMsgIndex1..3      17 bTeoPrologue[3]
     *  20 ulDataLength       24 abData (the APDU)
     */
    size_t n = 24;
    if (!params_valid(p, 2) || cap < n + 5 + 2 * p->block_len)
        return 0;
    out[0] = (unsigned char)p->timeout_s;
    out[1] = (unsigned char)p->timeout_s;
    out[2] = format_string(p);
    out[3] = (unsigned char)p->block_len;
    out[4] = 0x00;
    out[5] = 0x00;                         /* the old PIN: first block */
    out[6] = (unsigned char)p->block_len;  /* the new PIN: second block */
    put_le16(out + 7, p->min_len << 8 | p->max_len);
    out[9] = 0x03;                         /* enter the old PIN, confirm the new one */
    out[10] = (unsigned char)p->validation;
    out[11] = 0x03;                        /* three messages: old, new, new again */
    put_le16(out + 12, p->lang_id);
    out[14] = 0x00, out[15] = 0x01, out[16] = 0x02;
    memset(out + 17, 0, 3);
    n += put_apdu(p, 2, out + n);
    put_le32(out + 20, n - 24);
    return n;
}

ukey_err pinpad_reader_sw(unsigned sw)
{
    switch (sw) {
    case 0x6400:
        return UKEY_ERR_PIN_PAD_TIMEOUT;
    case 0x6401:
        return UKEY_ERR_PIN_PAD_CANCELLED;
    case 0x6402:
    case 0x6403:
        return UKEY_ERR_PIN_FORMAT;
    case 0x6b80:
        return UKEY_ERR_CARD_ERROR;
    default:
        return UKEY_OK;
    }
}
