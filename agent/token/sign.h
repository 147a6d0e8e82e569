/*
 * Data signatures (issue 15, POST /api/v1/sign): the bytes a legacy page
 * gives, signed by a certificate of the token, as a raw signature or as a
 * CMS/PKCS#7 SignedData (x509/cms.h). The algorithm is the key's:
 *   RSA-2048  SHA256withRSA    PKCS#1 v1.5 over SHA-256(data)
 *   P-256     SHA256withECDSA  DER ECDSA-Sig-Value over SHA-256(data)
 *   P-384     SHA384withECDSA  the same over SHA-384(data)
 *   SM2       SM3withSM2       DER SEQUENCE {r, s} over e = SM3(Z_A || data),
 *                              the default ID 1234567812345678 (GM/T 0009)
 * For the CMS formats the token signs the signed attributes instead of the
 * data. Unlike a login, nothing binds such a signature to the site that
 * asked: the API allows it only for sites configured with "legacy_sign".
 * The card work is the login's (tokens_pin_sign in token/login.h).
 */
#ifndef UKEY_TOKEN_SIGN_H
#define UKEY_TOKEN_SIGN_H

#include "token/login.h"

#include <jansson.h>

#define SIGN_DATA_MAX 32768 /* bytes */

enum sign_format { SIGN_RAW, SIGN_CMS, SIGN_CMS_ATTACHED };

struct sign_request {
    const unsigned char *data;  /* 1 to SIGN_DATA_MAX bytes (the caller checks) */
    size_t len;
    enum sign_format format;
    const char *algorithm;      /* NULL, or the key's: "SHA256withRSA", "SM3withSM2", ... */
};

/* "raw", "cms", "cms-attached". */
const char *sign_format_name(enum sign_format f);

/* The format called `name`: 0, or -1 for an unknown name. */
int sign_format_named(const char *name, enum sign_format *f);

/*
 * Signs the data. On success *answer is the API's answer object
 * {"format", "algorithm", "signature", "certificate", "token",
 * "certificate_id"} (owned by the caller); ALGORITHM_MISMATCH if
 * req->algorithm is not the key's. *pin holds the PIN state afterwards,
 * also on PIN errors.
 */
ukey_err tokens_sign(const struct token_signer *who, const struct sign_request *req, json_t **answer,
                     struct token_pin *pin);

#endif
