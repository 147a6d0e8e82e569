/*
 * The PC/SC layer. The only file that includes <winscard.h>; SCARD_* codes
 * are translated here and nowhere else.
 */
#ifndef UKEY_TOKEN_PCSC_H
#define UKEY_TOKEN_PCSC_H

struct pcsc_probe {
    int available;          /* the PC/SC service answered */
    int readers;            /* readers attached */
    int cards;              /* readers with a card present */
    const char *error_code; /* e.g. "SCARD_E_NO_SERVICE" when not available */
    const char *detail;     /* English explanation of error_code */
};

/* Asks the PC/SC service for readers and cards, without blocking on cards. */
void pcsc_probe(struct pcsc_probe *out);

#endif
