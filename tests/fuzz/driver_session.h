/*
 * The replay transport shared by the card driver fuzz targets (fuzz_piv,
 * fuzz_openpgp): the input is the card's side of a session, answers each as
 * a 2-byte big-endian length and the bytes (data + SW1 SW2), given in order
 * to whatever the driver sends.
 */
#ifndef UKEY_FUZZ_DRIVER_SESSION_H
#define UKEY_FUZZ_DRIVER_SESSION_H

#include "token/token.h"

#include <stddef.h>
#include <stdint.h>

/* Runs one session of driver `d` over the answers in data[0..size): SELECT,
 * identify, read, PIN status, VERIFY, a signature with certificate
 * `cert_id` for each key kind, an unblock, logout and a VERIFY on the
 * reader's PIN pad (the replayed reader always has one). Traps on a broken
 * driver contract (too many certificates, a signature over capacity). */
void driver_session(const struct token_driver *d, const char *cert_id, const uint8_t *data, size_t size);

#endif
