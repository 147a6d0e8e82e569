/* Data signatures; see sign.h. */
#include "token/sign.h"

#include "util/b64.h"
#include "x509/cms.h"
#include "x509/sigenc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const format_names[] = {[SIGN_RAW] = "raw", [SIGN_CMS] = "cms", [SIGN_CMS_ATTACHED] = "cms-attached"};

const char *sign_format_name(enum sign_format f) { return format_names[f]; }

int sign_format_named(const char *name, enum sign_format *f)
{
    for (size_t i = 0; i < sizeof format_names / sizeof format_names[0]; i++)
        if (strcmp(name, format_names[i]) == 0) {
            *f = (enum sign_format)i;
            return 0;
        }
    return -1;
}

/* What the token signs: the data, or the CMS's signed attributes. */
struct sign_message {
    const struct sign_request *req;
    struct cms_signed *cms;
};

static ukey_err sign_message(void *arg, X509 *crt, enum websig_alg alg, const unsigned char **m, size_t *m_len)
{
    struct sign_message *sm = arg;
    const struct sign_request *req = sm->req;
    if (req->algorithm && strcmp(req->algorithm, websig_sign_name(alg)) != 0)
        return UKEY_ERR_ALGORITHM_MISMATCH;
    if (req->format == SIGN_RAW) {
        *m = req->data;
        *m_len = req->len;
        return UKEY_OK;
    }
    if (!(sm->cms = cms_begin(crt, req->data, req->len, req->format == SIGN_CMS_ATTACHED, time(NULL))))
        return UKEY_ERR_OUT_OF_MEMORY; /* the key is one cms_begin takes: tokens_pin_sign checked it */
    *m = cms_to_sign(sm->cms, m_len);
    return UKEY_OK;
}

ukey_err tokens_sign(const struct token_signer *who, const struct sign_request *req, json_t **answer,
                     struct token_pin *pin)
{
    struct sign_message sm = {req, NULL};
    struct pin_signature ps;
    unsigned char der[WEBSIG_MAX_SIG + 16], *cms = NULL;
    const unsigned char *sig;
    size_t sig_len, cms_len = 0;
    size_t n;
    int der_len;
    ukey_err e;

    *answer = NULL;
    e = tokens_pin_sign(who, 0, sign_message, &sm, &ps, pin);
    if (e != UKEY_OK)
        goto out;
    /* ECDSA and SM2 go out as DER SEQUENCE {r, s}, RSA as it is. */
    sig = ps.sig;
    sig_len = ps.sig_len;
    if ((n = websig_ec_size(ps.alg)) != 0) {
        if ((der_len = sigenc_ecdsa_raw_to_der(ps.sig, n, der, sizeof der)) < 0) {
            e = UKEY_ERR_INTERNAL;
            goto out;
        }
        sig = der;
        sig_len = (size_t)der_len;
    }
    if (sm.cms) {
        if (cms_finish(sm.cms, sig, sig_len, &cms, &cms_len) != 0) {
            e = UKEY_ERR_OUT_OF_MEMORY;
            goto out;
        }
        sig = cms;
        sig_len = cms_len;
    }
    {
        char *sig_b64 = b64_encode(sig, sig_len);
        char *cert_b64 = b64_encode(ps.cert.der, ps.cert.der_len);
        if (sig_b64 && cert_b64)
            *answer = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "format", sign_format_name(req->format),
                                "algorithm", websig_sign_name(ps.alg), "signature", sig_b64, "certificate",
                                cert_b64, "token", ps.token_id, "certificate_id", ps.cert.id);
        free(sig_b64);
        free(cert_b64);
        e = *answer ? UKEY_OK : UKEY_ERR_OUT_OF_MEMORY;
    }
out:
    free(cms);
    cms_free(sm.cms);
    pin_signature_free(&ps);
    return e;
}
