/*
 * test_apdu: apdu_run over a replay transport instead of PC/SC. The card's
 * answers are recorded in a script; every command sent is checked against
 * what the script expects, so chaining, GET RESPONSE and Le retries are
 * proven byte for byte.
 */
#include "check.h"

#include "token/apdu.h"

struct step {
    const unsigned char *expect; /* command the agent must send */
    size_t expect_len;
    const unsigned char *answer; /* recorded response (data + SW) */
    size_t answer_len;
};

static const struct step *script;
static size_t script_len, script_pos;

/* The replay transport: stands in for pcsc.c's card_transmit. */
ukey_err card_transmit(struct card *card, const unsigned char *cmd, size_t cmd_len,
                       unsigned char *resp, size_t *resp_len)
{
    const struct step *s;
    (void)card;
    if (script_pos >= script_len) {
        fprintf(stderr, "unexpected command %zu\n", script_pos);
        CHECK(0);
        return UKEY_ERR_CARD_ERROR;
    }
    s = &script[script_pos++];
    if (cmd_len != s->expect_len || memcmp(cmd, s->expect, cmd_len) != 0) {
        fprintf(stderr, "command %zu differs from the recording\n", script_pos - 1);
        CHECK(0);
    }
    memcpy(resp, s->answer, s->answer_len);
    *resp_len = s->answer_len;
    return UKEY_OK;
}

#define STEP(e, a) {e, sizeof e, a, sizeof a}

static void play(const struct step *steps, size_t n)
{
    script = steps;
    script_len = n;
    script_pos = 0;
}

int main(void)
{
    static const unsigned char select_cmd[] = {0x00, 0xa4, 0x04, 0x00, 0x05, 0xa0, 0x00, 0x00, 0x03, 0x08, 0x00};
    static const unsigned char select_ok[] = {0x61, 0x03, 0x4f, 0x01, 0x00, 0x90, 0x00};
    static const unsigned char get_data[] = {0x00, 0xcb, 0x3f, 0xff, 0x03, 0x5c, 0x01, 0x7e, 0x00};
    static const unsigned char part1[] = {0x7e, 0x04, 0x61, 0x02};
    static const unsigned char get_response[] = {0x00, 0xc0, 0x00, 0x00, 0x02};
    static const unsigned char part2[] = {0x4f, 0x00, 0x90, 0x00};
    static const unsigned char wrong_le[] = {0x6c, 0x03};
    static const unsigned char resend[] = {0x00, 0xcb, 0x3f, 0xff, 0x03, 0x5c, 0x01, 0x7e, 0x03};
    static const unsigned char three[] = {0x7e, 0x01, 0x00, 0x90, 0x00};
    static const unsigned char ok[] = {0x90, 0x00};
    static const unsigned char blocked[] = {0x69, 0x83};
    static const unsigned char big_piece[] = {0xaa, 0xbb, 0xcc, 0xdd, 0x61, 0x00};
    unsigned char long_data[300], chain1[5 + 255], chain2[5 + 45 + 1], out[64];
    struct apdu cmd;
    size_t len;
    unsigned sw;

    /* SELECT with Le: one exchange, data and SW. */
    {
        const struct step s[] = {STEP(select_cmd, select_ok)};
        cmd = (struct apdu){0x00, 0xa4, 0x04, 0x00, select_cmd + 5, 5, 0};
        play(s, 1);
        CHECK(apdu_run(NULL, &cmd, out, sizeof out, &len, &sw) == UKEY_OK && sw == 0x9000 && len == 5);
        CHECK(script_pos == 1);
    }
    /* 61xx: the rest comes with GET RESPONSE and is appended. */
    {
        const struct step s[] = {STEP(get_data, part1), STEP(get_response, part2)};
        cmd = (struct apdu){0x00, 0xcb, 0x3f, 0xff, get_data + 5, 3, 0};
        play(s, 2);
        CHECK(apdu_run(NULL, &cmd, out, sizeof out, &len, &sw) == UKEY_OK && sw == 0x9000 && len == 4);
        CHECK(memcmp(out, "\x7e\x04\x4f\x00", 4) == 0 && script_pos == 2);
    }
    /* 6Cxx: the card names the right Le; the command is sent again with it. */
    {
        const struct step s[] = {STEP(get_data, wrong_le), STEP(resend, three)};
        play(s, 2);
        CHECK(apdu_run(NULL, &cmd, out, sizeof out, &len, &sw) == UKEY_OK && sw == 0x9000 && len == 3);
    }
    /* Command chaining: 300 bytes go as 255 (CLA 10) + 45 (CLA 00, with Le). */
    for (size_t i = 0; i < sizeof long_data; i++)
        long_data[i] = (unsigned char)i;
    memcpy(chain1, "\x10\x87\x07\x9c\xff", 5);
    memcpy(chain1 + 5, long_data, 255);
    memcpy(chain2, "\x00\x87\x07\x9c\x2d", 5);
    memcpy(chain2 + 5, long_data + 255, 45);
    chain2[50] = 0x00;
    {
        const struct step s[] = {STEP(chain1, ok), STEP(chain2, ok)};
        cmd = (struct apdu){0x00, 0x87, 0x07, 0x9c, long_data, sizeof long_data, 0};
        play(s, 2);
        CHECK(apdu_run(NULL, &cmd, out, sizeof out, &len, &sw) == UKEY_OK && sw == 0x9000 && script_pos == 2);
    }
    /* A status word is passed up, not turned into an error here. */
    {
        const struct step s[] = {STEP(select_cmd, blocked)};
        cmd = (struct apdu){0x00, 0xa4, 0x04, 0x00, select_cmd + 5, 5, 0};
        play(s, 1);
        CHECK(apdu_run(NULL, &cmd, out, sizeof out, &len, &sw) == UKEY_OK && sw == 0x6983 && len == 0);
        CHECK(iso7816_error(sw) == UKEY_ERR_PIN_BLOCKED && strstr(iso7816_sw_text(sw), "blocked"));
        /* Only 9000 is success to a driver, even for "more data" (61xx). */
        CHECK(iso7816_error(0x9000) == UKEY_OK && iso7816_error(0x6100) == UKEY_ERR_CARD_ERROR &&
              iso7816_error(0x61ff) == UKEY_ERR_CARD_ERROR);
    }
    /* A card that keeps saying "more" cannot fill memory: the cap stops it. */
    {
        static const unsigned char get_all[] = {0x00, 0xc0, 0x00, 0x00, 0x00};
        struct step s[40];
        s[0] = (struct step)STEP(select_cmd, big_piece);
        for (size_t i = 1; i < 40; i++)
            s[i] = (struct step)STEP(get_all, big_piece);
        play(s, 40);
        CHECK(apdu_run(NULL, &cmd, out, 16, &len, &sw) == UKEY_ERR_CARD_DATA_INVALID);
    }
    return check_done();
}
