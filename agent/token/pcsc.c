/* PC/SC access (pcsc-lite / WinSCard); see pcsc.h. */
#include "token/pcsc.h"

#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>
#include <stdlib.h>
#include <string.h>

struct scard_err {
    LONG code;
    const char *name;
    const char *detail;
};

/* The one table of PC/SC error codes this layer reports. */
static const struct scard_err scard_errors[] = {
    {(LONG)SCARD_E_NO_SERVICE, "SCARD_E_NO_SERVICE", "the smart-card service (pcscd) is not running"},
    {(LONG)SCARD_E_SERVICE_STOPPED, "SCARD_E_SERVICE_STOPPED", "the smart-card service stopped"},
    {(LONG)SCARD_E_NO_READERS_AVAILABLE, "SCARD_E_NO_READERS_AVAILABLE", "no card reader is connected"},
    {(LONG)SCARD_E_NO_MEMORY, "SCARD_E_NO_MEMORY", "out of memory"},
    {(LONG)SCARD_E_TIMEOUT, "SCARD_E_TIMEOUT", "the smart-card service did not answer in time"},
    {(LONG)SCARD_E_SHARING_VIOLATION, "SCARD_E_SHARING_VIOLATION", "another program holds the card exclusively"},
    {(LONG)SCARD_F_INTERNAL_ERROR, "SCARD_F_INTERNAL_ERROR", "internal error in the smart-card service"},
};

static void set_error(struct pcsc_probe *out, LONG rv)
{
    for (size_t i = 0; i < sizeof scard_errors / sizeof scard_errors[0]; i++) {
        if (scard_errors[i].code == rv) {
            out->error_code = scard_errors[i].name;
            out->detail = scard_errors[i].detail;
            return;
        }
    }
    out->error_code = "SCARD_E_UNKNOWN";
    out->detail = pcsc_stringify_error(rv);
}

void pcsc_probe(struct pcsc_probe *out)
{
    SCARDCONTEXT ctx;
    DWORD len = 0;
    char *names = NULL;
    LONG rv;

    memset(out, 0, sizeof *out);
    rv = SCardEstablishContext(SCARD_SCOPE_USER, NULL, NULL, &ctx);
    if (rv != SCARD_S_SUCCESS) {
        set_error(out, rv);
        return;
    }
    out->available = 1;
    rv = SCardListReaders(ctx, NULL, NULL, &len);
    if (rv == SCARD_S_SUCCESS && len > 1 && (names = malloc(len)) != NULL &&
        SCardListReaders(ctx, NULL, names, &len) == SCARD_S_SUCCESS) {
        SCARD_READERSTATE states[16];
        DWORD n = 0;
        for (char *r = names; *r && n < 16; r += strlen(r) + 1, n++) {
            memset(&states[n], 0, sizeof states[n]);
            states[n].szReader = r;
            states[n].dwCurrentState = SCARD_STATE_UNAWARE;
        }
        out->readers = (int)n;
        if (SCardGetStatusChange(ctx, 0, states, n) == SCARD_S_SUCCESS)
            for (DWORD i = 0; i < n; i++)
                out->cards += (states[i].dwEventState & SCARD_STATE_PRESENT) != 0;
    }
    free(names);
    SCardReleaseContext(ctx);
}
