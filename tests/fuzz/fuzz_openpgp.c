/* Fuzz target: the OpenPGP card driver reading a card, over the replay
 * transport of driver_session.h. The input is the card's answers to SELECT,
 * GET DATA 4F / 6E / C4 / 7F21, SELECT DATA, VERIFY, INTERNAL AUTHENTICATE,
 * RESET RETRY COUNTER and logout; tests/fuzz/openpgp_seeds.py writes the
 * seeds in corpus/openpgp. */
#include "driver_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    driver_session(&openpgp_driver, "auth", data, size);
    return 0;
}
