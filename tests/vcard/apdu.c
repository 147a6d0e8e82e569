/*
 * ukey-vcard's APDU layer, common to its profiles: command parsing, the
 * APDU log, faults, command chaining (ISO 7816-4 5.1.1), GET RESPONSE
 * (7.6.1) and the helpers the PIV and OpenPGP applications answer with.
 */
#include "vcard.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <stdlib.h>
#include <string.h>

static mbedtls_ctr_drbg_context drbg;
static mbedtls_entropy_context entropy;
static int drbg_ready;

int vcard_rng(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    if (!drbg_ready) {
        mbedtls_entropy_init(&entropy);
        mbedtls_ctr_drbg_init(&drbg);
        if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0) != 0)
            return -1;
        drbg_ready = 1;
    }
    return mbedtls_ctr_drbg_random(&drbg, out, len);
}

void vcard_reset(struct vcard *card)
{
    card->selected = 0;
    card->pin_verified = 0;
    card->pw1_cds_verified = 0;
    card->occurrence = 0;
    card->chain_len = 0;
    free(card->pending);
    card->pending = NULL;
    card->pending_len = card->pending_off = 0;
}

/* Writes a BER length at out; returns its size. */
size_t vcard_put_len(unsigned char *out, size_t len)
{
    if (len < 0x80)
        return out[0] = (unsigned char)len, 1;
    if (len < 0x100)
        return out[0] = 0x81, out[1] = (unsigned char)len, 2;
    return out[0] = 0x82, out[1] = (unsigned char)(len >> 8), out[2] = (unsigned char)len, 3;
}

/* Answers with `data` (chunked: 61xx + GET RESPONSE when over 256) and SW 9000. */
void vcard_reply_data(struct vcard *card, const unsigned char *data, size_t len, unsigned char *out,
                      size_t *out_len)
{
    size_t first = len > 256 ? 256 : len;
    free(card->pending);
    card->pending = NULL;
    card->pending_len = card->pending_off = 0;
    memcpy(out, data, first);
    if (len > first) {
        size_t rest = len - first;
        card->pending = malloc(rest);
        memcpy(card->pending, data + first, rest);
        card->pending_len = rest;
        out[first] = 0x61;
        out[first + 1] = (unsigned char)(rest > 255 ? 0 : rest);
    } else {
        out[first] = 0x90;
        out[first + 1] = 0x00;
    }
    *out_len = first + 2;
}

void vcard_reply_sw(unsigned sw, unsigned char *out, size_t *out_len)
{
    out[0] = (unsigned char)(sw >> 8);
    out[1] = (unsigned char)sw;
    *out_len = 2;
}

static void get_response(struct vcard *card, unsigned char *out, size_t *out_len)
{
    size_t rest = card->pending_len - card->pending_off, n = rest > 256 ? 256 : rest;
    if (!card->pending || rest == 0) {
        vcard_reply_sw(0x6985, out, out_len);
        return;
    }
    memcpy(out, card->pending + card->pending_off, n);
    card->pending_off += n;
    rest -= n;
    out[n] = rest ? 0x61 : 0x90;
    out[n + 1] = rest ? (unsigned char)(rest > 255 ? 0 : rest) : 0x00;
    *out_len = n + 2;
    if (!rest) {
        free(card->pending);
        card->pending = NULL;
        card->pending_len = card->pending_off = 0;
    }
}

/* Checks `value` against the PIN (or PUK) with its counter; returns the SW. */
unsigned vcard_check_secret(struct vcard *card, const char *value, int puk)
{
    int *tries = puk ? &card->puk_tries : &card->pin_tries;
    int max = puk ? card->puk_tries_max : card->pin_tries_max;
    if (*tries == 0)
        return 0x6983;
    if (strcmp(value, puk ? card->puk : card->pin) != 0) {
        (*tries)--;
        vcard_state_save(card);
        return *tries == 0 ? 0x6983 : 0x63c0u | (unsigned)*tries;
    }
    if (*tries != max) {
        *tries = max;
        vcard_state_save(card);
    }
    return 0x9000;
}

void vcard_apdu(struct vcard *card, const unsigned char *cmd, size_t len, unsigned char *out,
                size_t *out_len)
{
    unsigned char cla, ins, p1, p2;
    const unsigned char *data = NULL;
    size_t lc = 0;

    if (len < 4) {
        vcard_reply_sw(0x6700, out, out_len);
        return;
    }
    cla = cmd[0], ins = cmd[1], p1 = cmd[2], p2 = cmd[3];
    if (len > 5) {
        lc = cmd[4];
        if (lc == 0 || 5 + lc > len) {
            vcard_reply_sw(0x6700, out, out_len);
            return;
        }
        data = cmd + 5;
    }
    if (card->log) {
        /* Never the data of PIN commands: it holds PINs. */
        fprintf(card->log, "APDU %02X %02X %02X %02X lc=%zu\n", cla, ins, p1, p2, lc);
        fflush(card->log);
    }
    if (card->faults.sw_ins == ins) {
        vcard_reply_sw(card->faults.sw_value, out, out_len);
        return;
    }
    if ((cla & ~0x10) != 0x00) {
        vcard_reply_sw(0x6e00, out, out_len);
        return;
    }
    if (ins != 0xc0 && card->pending) {
        free(card->pending);
        card->pending = NULL;
        card->pending_len = card->pending_off = 0;
    }
    /* ISO 7816-4 5.1.1 command chaining: gather, answer 9000, run on the last block. */
    if (cla & 0x10) {
        if (card->chain_len + lc > sizeof card->chain) {
            card->chain_len = 0;
            vcard_reply_sw(0x6700, out, out_len);
            return;
        }
        memcpy(card->chain + card->chain_len, data, lc);
        card->chain_len += lc;
        vcard_reply_sw(0x9000, out, out_len);
        return;
    }
    if (card->chain_len) {
        if (card->chain_len + lc > sizeof card->chain) {
            card->chain_len = 0;
            vcard_reply_sw(0x6700, out, out_len);
            return;
        }
        memcpy(card->chain + card->chain_len, data, lc);
        lc += card->chain_len;
        data = card->chain;
        card->chain_len = 0;
    }
    if (ins == 0xc0) {
        get_response(card, out, out_len);
        return;
    }
    if (card->profile == VCARD_OPENPGP)
        vcard_openpgp_command(card, ins, p1, p2, data, lc, out, out_len);
    else
        vcard_piv_command(card, ins, p1, p2, data, lc, out, out_len);
}
