/*
 * What an SKF library (GM/T 0016) hands back, read without trusting it:
 * name lists, DEVINFO, public-key and signature blobs. Pure functions over
 * bytes, so tests/fuzz/fuzz_skf.c can throw anything at them; skf.c calls
 * the library, these read its answers.
 *
 * The ULONG width of a library (4 bytes in the spec, 8 in some LP64 vendor
 * headers) changes where a blob's fields sit, so the blob readers take it;
 * skfw_abi() tells it from the length of a public-key blob.
 */
#ifndef UKEY_TOKEN_SKFWIRE_H
#define UKEY_TOKEN_SKFWIRE_H

#include <stddef.h>

/* A name list (or certificate, blob) longer than this is not believed. */
#define SKFW_LIST_MAX 65536
#define SKFW_MAX_NAMES 16
#define SKFW_NAME_MAX 64

/*
 * A name list (GM/T 0016 7.1.x: each name ends with '\0', the list with a
 * second '\0'), `len` bytes as the library said, in a buffer the caller
 * made at least len + 2 bytes long and zeroed (so the walk always ends).
 * Copies out up to SKFW_MAX_NAMES distinct names that are text (skfw_text)
 * and shorter than SKFW_NAME_MAX; others are skipped. Returns how many, or
 * -1 when the list does not end within `len` bytes or `len` is more than
 * SKFW_LIST_MAX.
 */
long skfw_names(const char *list, size_t len, char names[SKFW_MAX_NAMES][SKFW_NAME_MAX]);

/* 1 if the `len` bytes are printable text: UTF-8 (ASCII included) without
 * control characters. */
int skfw_text(const char *s, size_t len);

/* DEVINFO's strings (GM/T 0016 6.4.4), the same offsets in either ULONG
 * width: they come before its first ULONG. */
struct skfw_devinfo {
    char manufacturer[65];
    char issuer[65];
    char label[33];
    char serial[33];
};

/* Reads the strings of a DEVINFO from a buffer of `len` bytes (each ends at
 * its first '\0', or is padded with blanks to its field's end; trailing
 * blanks dropped; bytes that are not text make the field empty). -1 when
 * the buffer is too short, a field is neither ended nor padded, or both
 * label and serial are empty (nothing tells this device from another). */
int skfw_devinfo(const unsigned char *buf, size_t len, struct skfw_devinfo *out);

/* The ULONG width, in bytes, that a signing public-key blob's length shows
 * (GM/T 0016 6.4.5/6.4.6 layouts): 4 for 132 (ECC) or 268 (RSA), 8 for 136
 * (ECC) or 276/280 (RSA, packed or not); 0 for anything else. */
int skfw_abi(unsigned long long blob_len);

enum skfw_key_type { SKFW_KEY_ECC, SKFW_KEY_RSA };

struct skfw_pubkey {
    enum skfw_key_type type;
    unsigned bits;
    unsigned char x[32], y[32];  /* ECC: the point, 32 bytes each */
    unsigned char n[256];        /* RSA: the modulus, right-aligned in 256 bytes */
    unsigned char e[4];          /* RSA: the exponent, big-endian */
};

/* Reads an ECCPUBLICKEYBLOB or RSAPUBLICKEYBLOB of `len` bytes from a
 * library whose ULONG is `abi` bytes. ECC: BitLen 256 and the upper 32
 * bytes of X and Y zero (numbers are right-aligned in 64 bytes); RSA:
 * BitLen 1024 or 2048 and a modulus no longer than that. 0 or -1. */
int skfw_pubkey(const unsigned char *blob, size_t len, int abi, struct skfw_pubkey *out);

/* An ECCSIGNATUREBLOB (128 bytes, no ULONG) as r||s, 32 bytes each: the
 * upper 32 bytes of r and s must be zero and neither may be zero. 0 or -1. */
int skfw_eccsig(const unsigned char *blob, size_t len, unsigned char rs[64]);

#endif
