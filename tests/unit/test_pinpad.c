/*
 * Pin-pad readers (PC/SC Part 10): the feature list a reader answers to
 * CM_IOCTL_GET_FEATURE_REQUEST, well-formed and hostile, and the PIN
 * structures checked byte by byte against vectors written out by hand.
 * No reader is needed (and none with a keypad was at hand): pcsc.c only
 * sends what these functions build.
 */
#include "check.h"

#include "token/pinpad.h"

/* PIV VERIFY of the application PIN (SP 800-73-4 Part 2, 3.2.1): 00 20 00 80,
 * one 8-byte block padded with FF, ASCII digits, 6 to 8 of them. */
static const struct pinpad_params piv_verify = {
    {0x00, 0x20, 0x00, 0x80}, 8, PINPAD_ASCII, 0xff, 6, 8, PINPAD_TIMEOUT_S, PINPAD_LANG_ZH_CN,
    PINPAD_VALIDATE_OK_KEY};

static void features(void)
{
    /* A reader as pcsc-lite's CCID driver lists one with a keypad:
     * VERIFY_PIN_DIRECT, MODIFY_PIN_DIRECT, IFD_PIN_PROPERTIES, GET_TLV_PROPERTIES. */
    static const unsigned char keypad[] = {
        0x06, 0x04, 0x42, 0x33, 0x00, 0x06, 0x07, 0x04, 0x42, 0x33, 0x00, 0x07,
        0x0a, 0x04, 0x42, 0x33, 0x00, 0x0a, 0x12, 0x04, 0x42, 0x33, 0x00, 0x12};
    /* A reader without a keypad: only GET_TLV_PROPERTIES and CCID_ESC_COMMAND. */
    static const unsigned char plain[] = {0x12, 0x04, 0x42, 0x33, 0x00, 0x12, 0x13, 0x04, 0x42, 0x33, 0x00, 0x13};
    /* Hostile or broken answers. */
    static const unsigned char short_len[] = {0x06, 0x02, 0x42, 0x33};
    static const unsigned char long_len[] = {0x06, 0x05, 0x42, 0x33, 0x00, 0x06, 0x00};
    static const unsigned char truncated[] = {0x06, 0x04, 0x42, 0x33, 0x00, 0x06, 0x07, 0x04, 0x42, 0x33};
    static const unsigned char lone_tag[] = {0x06, 0x04, 0x42, 0x33, 0x00, 0x06, 0x07};
    static const unsigned char zero_code[] = {0x06, 0x04, 0x00, 0x00, 0x00, 0x00};
    static const unsigned char huge_len[] = {0x06, 0xff, 0x42, 0x33, 0x00, 0x06};
    /* Twice the same tag: the first one counts. */
    static const unsigned char twice[] = {0x06, 0x04, 0x00, 0x00, 0x00, 0x01, 0x06, 0x04, 0x00, 0x00, 0x00, 0x02};
    struct pinpad_features f;

    CHECK(pinpad_parse_features(keypad, sizeof keypad, &f) == 0);
    CHECK(f.verify == 0x42330006u && f.modify == 0x42330007u && f.properties == 0x4233000au);
    CHECK(pinpad_parse_features(plain, sizeof plain, &f) == 0);
    CHECK(f.verify == 0 && f.modify == 0 && f.properties == 0);
    CHECK(pinpad_parse_features(keypad, 0, &f) == 0 && f.verify == 0);   /* no features at all */
    CHECK(pinpad_parse_features(twice, sizeof twice, &f) == 0 && f.verify == 1);

    CHECK(pinpad_parse_features(short_len, sizeof short_len, &f) == -1 && f.verify == 0);
    CHECK(pinpad_parse_features(long_len, sizeof long_len, &f) == -1 && f.verify == 0);
    CHECK(pinpad_parse_features(truncated, sizeof truncated, &f) == -1 && f.verify == 0);
    CHECK(pinpad_parse_features(lone_tag, sizeof lone_tag, &f) == -1 && f.verify == 0);
    CHECK(pinpad_parse_features(zero_code, sizeof zero_code, &f) == -1);
    CHECK(pinpad_parse_features(huge_len, sizeof huge_len, &f) == -1);
    /* Every cut of a good list is either a shorter good list or refused. */
    for (size_t n = 0; n <= sizeof keypad; n++) {
        int r = pinpad_parse_features(keypad, n, &f);
        CHECK(n % 6 == 0 ? r == 0 : r == -1);
        CHECK(r == 0 || (f.verify == 0 && f.modify == 0 && f.properties == 0));
    }
}

static void properties(void)
{
    /* wLcdLayout 0x0210 (2 lines of 16), bEntryValidationCondition 07, bTimeOut2 00, and a v2.02.09 extra byte */
    static const unsigned char lcd[] = {0x10, 0x02, 0x07, 0x00, 0x00};
    struct pinpad_properties p;
    CHECK(pinpad_parse_properties(lcd, sizeof lcd, &p) == 0);
    CHECK(p.lcd_layout == 0x0210 && p.validation == 0x07 && p.timeout2 == 0);
    CHECK(pinpad_parse_properties(lcd, 3, &p) == -1 && p.lcd_layout == 0);
    CHECK(pinpad_parse_properties(lcd, 0, &p) == -1);
}

static void verify_structure(void)
{
    /* By hand, from the PIN_VERIFY_STRUCTURE layout: */
    static const unsigned char want[] = {
        0x1e,                   /* bTimerOut: 30 s */
        0x1e,                   /* bTimerOut2: 30 s */
        0x82,                   /* bmFormatString: byte units, position 0, left, ASCII */
        0x08,                   /* bmPINBlockString: no length field, 8-byte block */
        0x00,                   /* bmPINLengthFormat */
        0x08, 0x06,             /* wPINMaxExtraDigit 0x0608: min 6, max 8 (little-endian) */
        0x02,                   /* bEntryValidationCondition: OK key */
        0x01,                   /* bNumberMessage */
        0x04, 0x08,             /* wLangId 0x0804 zh-CN */
        0x00,                   /* bMsgIndex */
        0x00, 0x00, 0x00,       /* bTeoPrologue */
        0x0d, 0x00, 0x00, 0x00, /* ulDataLength: 13 */
        0x00, 0x20, 0x00, 0x80, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    unsigned char out[PINPAD_MAX_STRUCT];
    struct pinpad_params p = piv_verify;

    CHECK(sizeof want == 32);
    CHECK(pinpad_build_verify(&p, out, sizeof out) == sizeof want);
    CHECK(memcmp(out, want, sizeof want) == 0);
    /* Exactly enough room, and one byte less. */
    CHECK(pinpad_build_verify(&p, out, sizeof want) == sizeof want);
    CHECK(pinpad_build_verify(&p, out, sizeof want - 1) == 0);
    CHECK(pinpad_build_verify(&p, out, 0) == 0);

    /* Another driver's command: BCD in a 4-byte block, 0 pad, reader's default timeout, en-US. */
    p = (struct pinpad_params){{0x00, 0x20, 0x00, 0x01}, 4, PINPAD_BCD, 0x00, 4, 8, 0, 0x0409, 0x02};
    CHECK(pinpad_build_verify(&p, out, sizeof out) == 19 + 5 + 4);
    CHECK(out[0] == 0 && out[2] == 0x81 && out[3] == 0x04 && out[5] == 0x08 && out[6] == 0x04);
    CHECK(out[9] == 0x09 && out[10] == 0x04 && out[15] == 9 && out[23] == 0x04 && out[27] == 0x00);

    /* Out of range: each refused, nothing half-built is returned. */
    p = piv_verify, p.block_len = 0;
    CHECK(pinpad_build_verify(&p, out, sizeof out) == 0);
    p = piv_verify, p.block_len = 16;                      /* bmPINBlockString has 4 bits */
    CHECK(pinpad_build_verify(&p, out, sizeof out) == 0);
    p = piv_verify, p.max_len = 9;                         /* 9 ASCII digits in 8 bytes */
    CHECK(pinpad_build_verify(&p, out, sizeof out) == 0);
    p = piv_verify, p.format = PINPAD_BCD, p.max_len = 16; /* 16 BCD digits fit 8 bytes */
    CHECK(pinpad_build_verify(&p, out, sizeof out) == 32);
    p = piv_verify, p.min_len = 9;                         /* min > max */
    CHECK(pinpad_build_verify(&p, out, sizeof out) == 0);
    p = piv_verify, p.min_len = 0;
    CHECK(pinpad_build_verify(&p, out, sizeof out) == 0);
    p = piv_verify, p.timeout_s = 256;
    CHECK(pinpad_build_verify(&p, out, sizeof out) == 0);
    p = piv_verify, p.lang_id = 0x10000;
    CHECK(pinpad_build_verify(&p, out, sizeof out) == 0);
    p = piv_verify, p.validation = 0x100;
    CHECK(pinpad_build_verify(&p, out, sizeof out) == 0);
    p = piv_verify, p.format = (enum pinpad_format)3;
    CHECK(pinpad_build_verify(&p, out, sizeof out) == 0);
}

static void modify_structure(void)
{
    /* PIV CHANGE REFERENCE DATA (SP 800-73-4 Part 2, 3.2.2): 00 24 00 80 10, old || new. */
    static const unsigned char want[] = {
        0x1e, 0x1e, 0x82, 0x08, 0x00,
        0x00,                   /* bInsertionOffsetOld */
        0x08,                   /* bInsertionOffsetNew */
        0x08, 0x06,             /* wPINMaxExtraDigit */
        0x03,                   /* bConfirmPIN: old PIN asked, new PIN confirmed */
        0x02,                   /* bEntryValidationCondition */
        0x03,                   /* bNumberMessage */
        0x04, 0x08,             /* wLangId */
        0x00, 0x01, 0x02,       /* bMsgIndex1..3 */
        0x00, 0x00, 0x00,       /* bTeoPrologue */
        0x15, 0x00, 0x00, 0x00, /* ulDataLength: 21 */
        0x00, 0x24, 0x00, 0x80, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    unsigned char out[PINPAD_MAX_STRUCT];
    struct pinpad_params p = piv_verify;

    p.header[1] = 0x24;
    CHECK(sizeof want == 45);
    CHECK(pinpad_build_modify(&p, out, sizeof out) == sizeof want);
    CHECK(memcmp(out, want, sizeof want) == 0);
    CHECK(pinpad_build_modify(&p, out, sizeof want - 1) == 0);
    p.block_len = 15, p.max_len = 15;
    CHECK(pinpad_build_modify(&p, out, sizeof out) == 24 + 5 + 30);
    p.block_len = 16;
    CHECK(pinpad_build_modify(&p, out, sizeof out) == 0);
}

static void reader_words(void)
{
    CHECK(pinpad_reader_sw(0x6400) == UKEY_ERR_PIN_PAD_TIMEOUT);
    CHECK(pinpad_reader_sw(0x6401) == UKEY_ERR_PIN_PAD_CANCELLED);
    CHECK(pinpad_reader_sw(0x6402) == UKEY_ERR_PIN_FORMAT);
    CHECK(pinpad_reader_sw(0x6403) == UKEY_ERR_PIN_FORMAT);
    CHECK(pinpad_reader_sw(0x6b80) == UKEY_ERR_CARD_ERROR);
    /* The card's own answers pass through to the driver. */
    CHECK(pinpad_reader_sw(0x9000) == UKEY_OK);
    CHECK(pinpad_reader_sw(0x63c2) == UKEY_OK);
    CHECK(pinpad_reader_sw(0x6983) == UKEY_OK);
}

int main(void)
{
    features();
    properties();
    verify_structure();
    modify_structure();
    reader_words();
    return check_done();
}
