/* Fuzz target: the PIV driver reading a card (issue 8: "TLV/APDU response
 * parsing of each card driver, through a replay transport that feeds
 * recorded + mutated card answers"). The input is the card's answers to
 * SELECT, the CHUID and every certificate object, PIN status, VERIFY,
 * GENERAL AUTHENTICATE, RESET RETRY COUNTER and logout (driver_session.h). */
#include "driver_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    driver_session(&piv_driver, "9a", data, size);
    return 0;
}
