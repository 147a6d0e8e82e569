/*
 * What a driver operation runs on: a card in a PC/SC reader (pcsc.c) or a
 * token behind a PKCS#11 module (pkcs11.c). Exactly one of the two is set;
 * a driver for the other kind finds its member NULL and declines.
 */
#ifndef UKEY_TOKEN_CARD_H
#define UKEY_TOKEN_CARD_H

struct pcsc_card;
struct p11_session;

struct card {
    struct pcsc_card *pcsc;
    struct p11_session *p11;
};

#endif
