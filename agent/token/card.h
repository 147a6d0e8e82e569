/*
 * What a driver operation runs on: a card in a PC/SC reader (pcsc.c), a
 * token behind a PKCS#11 module (pkcs11.c) or a device behind an SKF
 * library (skf.c). Exactly one of them is set; a driver for another kind
 * finds its member NULL and declines.
 */
#ifndef UKEY_TOKEN_CARD_H
#define UKEY_TOKEN_CARD_H

struct pcsc_card;
struct p11_session;
struct skf_session;

struct card {
    struct pcsc_card *pcsc;
    struct p11_session *p11;
    struct skf_session *skf;
};

#endif
