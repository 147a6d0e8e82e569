/* The web-eid:1.0 login signature; see websig.h. */
#include "x509/websig.h"

#include "x509/crt.h"
#include "x509/sigenc.h"
#include "x509/sm2.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <string.h>

static const struct {
    const char *name;
    const char *sign_name;  /* the plug-ins' and Java's */
    const char *md;         /* the hash, for EVP */
    size_t ec;              /* r and s size; 0 for RSA */
    int pss;
} algs[] = {
    [WEBSIG_ES256] = {"ES256", "SHA256withECDSA", "SHA256", 32, 0},
    [WEBSIG_ES384] = {"ES384", "SHA384withECDSA", "SHA384", 48, 0},
    [WEBSIG_RS256] = {"RS256", "SHA256withRSA", "SHA256", 0, 0},
    [WEBSIG_PS256] = {"PS256", "SHA256withRSAandMGF1", "SHA256", 0, 1},
    [WEBSIG_RS384] = {"RS384", "SHA384withRSA", "SHA384", 0, 0},
    [WEBSIG_PS384] = {"PS384", "SHA384withRSAandMGF1", "SHA384", 0, 1},
    [WEBSIG_SM2_SM3] = {"SM2-SM3", "SM3withSM2", "SM3", 32, 0},
};

const char *websig_name(enum websig_alg alg) { return algs[alg].name; }
const char *websig_sign_name(enum websig_alg alg) { return algs[alg].sign_name; }

int websig_sign_name_known(const char *name)
{
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        if (strcmp(name, algs[i].sign_name) == 0)
            return 1;
    return 0;
}
size_t websig_ec_size(enum websig_alg alg) { return algs[alg].ec; }

int websig_alg_named(X509 *crt, const char *name, enum websig_alg *alg)
{
    int bits;
    enum x509_key_kind kind = x509_key_kind(crt, &bits);
    for (size_t i = 0; name && i < sizeof algs / sizeof algs[0]; i++) {
        if (strcmp(name, algs[i].name) != 0)
            continue;
        if ((i == WEBSIG_ES256 && kind == X509_KEY_P256) || (i == WEBSIG_ES384 && kind == X509_KEY_P384) ||
            (i == WEBSIG_SM2_SM3 && kind == X509_KEY_SM2) || (algs[i].ec == 0 && kind == X509_KEY_RSA)) {
            *alg = (enum websig_alg)i;
            return 0;
        }
    }
    return -1;
}

int websig_alg_for_key(X509 *crt, int pss, enum websig_alg *alg)
{
    int bits;
    switch (x509_key_kind(crt, &bits)) {
    case X509_KEY_RSA:
        if (bits != 2048)
            return -1;
        *alg = pss ? WEBSIG_PS256 : WEBSIG_RS256;
        return 0;
    case X509_KEY_P256: *alg = WEBSIG_ES256; return 0;
    case X509_KEY_P384: *alg = WEBSIG_ES384; return 0;
    case X509_KEY_SM2: *alg = WEBSIG_SM2_SM3; return 0;
    case X509_KEY_OTHER: break;
    }
    return -1;
}

size_t websig_login_message(enum websig_alg alg, const char *origin, const char *challenge, unsigned char m[96])
{
    unsigned int n = 0, n2 = 0;
    EVP_MD *md = EVP_MD_fetch(NULL, algs[alg].md, NULL);
    int ok = md && EVP_Digest(origin, strlen(origin), m, &n, md, NULL) &&
             EVP_Digest(challenge, strlen(challenge), m + n, &n2, md, NULL) && n == n2;
    EVP_MD_free(md);
    return ok ? 2 * (size_t)n : 0;
}

size_t websig_digest(X509 *crt, enum websig_alg alg, const unsigned char *m, size_t m_len, unsigned char out[64])
{
    unsigned int n = 0;
    EVP_MD *md;
    int ok;
    if (alg == WEBSIG_SM2_SM3)
        return sm2_e(X509_get0_pubkey(crt), m, m_len, out) == 0 ? 32 : 0;
    md = EVP_MD_fetch(NULL, algs[alg].md, NULL);
    ok = md && EVP_Digest(m, m_len, out, &n, md, NULL);
    EVP_MD_free(md);
    return ok ? n : 0;
}

/* The signature as EVP wants it: DER SEQUENCE {r, s} for ES and SM2 (into
 * der), the RSA signature as it is. Its length, or -1. */
static int evp_form(enum websig_alg alg, const unsigned char *sig, size_t sig_len, unsigned char der[160],
                    const unsigned char **out)
{
    int n;
    if (!algs[alg].ec) {
        *out = sig;
        return sig_len <= WEBSIG_MAX_SIG ? (int)sig_len : -1;
    }
    if (sig_len != 2 * algs[alg].ec || (n = sigenc_ecdsa_raw_to_der(sig, algs[alg].ec, der, 160)) < 0)
        return -1;
    *out = der;
    return n;
}

int websig_verify_digest(X509 *crt, enum websig_alg alg, const unsigned char *digest, size_t digest_len,
                         const unsigned char *sig, size_t sig_len)
{
    unsigned char der[160];
    const unsigned char *s;
    EVP_PKEY *key = X509_get0_pubkey(crt);
    EVP_PKEY_CTX *ctx = key ? EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL) : NULL;
    EVP_MD *md = alg == WEBSIG_SM2_SM3 ? NULL : EVP_MD_fetch(NULL, algs[alg].md, NULL);
    int n = evp_form(alg, sig, sig_len, der, &s), ok = 0;
    if (!ctx || n < 0 || EVP_PKEY_verify_init(ctx) != 1)
        goto out;
    /* SM2: e is signed as it is (the ID is already inside it). */
    if (alg != WEBSIG_SM2_SM3 && (!md || EVP_PKEY_CTX_set_signature_md(ctx, md) != 1))
        goto out;
    if (!algs[alg].ec && EVP_PKEY_CTX_set_rsa_padding(ctx, algs[alg].pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) != 1)
        goto out;
    if (algs[alg].pss && (EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1 ||
                          EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) != 1))
        goto out;
    ok = EVP_PKEY_verify(ctx, s, (size_t)n, digest, digest_len) == 1;
out:
    EVP_MD_free(md);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* SM2-SM3 over M through OpenSSL's message check, with the ID set. */
static int sm2_verify_message(EVP_PKEY *key, const unsigned char *m, size_t m_len, const unsigned char *der,
                              size_t der_len)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    EVP_MD *md = EVP_MD_fetch(NULL, "SM3", NULL);
    int ok = 0;
    if (mctx && pctx && md &&
        EVP_PKEY_CTX_set1_id(pctx, X509_SM2_DEFAULT_ID, sizeof X509_SM2_DEFAULT_ID - 1) == 1) {
        EVP_MD_CTX_set_pkey_ctx(mctx, pctx); /* the order EVP_PKEY-SM2(7) documents */
        ok = EVP_DigestVerifyInit(mctx, NULL, md, NULL, key) == 1 &&
             EVP_DigestVerify(mctx, der, der_len, m, m_len) == 1;
    }
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_CTX_free(pctx);
    EVP_MD_free(md);
    ERR_clear_error();
    return ok;
}

int websig_verify_message(X509 *crt, enum websig_alg alg, const unsigned char *m, size_t m_len,
                          const unsigned char *sig, size_t sig_len)
{
    unsigned char digest[64], der[160];
    const unsigned char *s;
    size_t n;
    int der_len;
    if (alg == WEBSIG_SM2_SM3) {
        if (!X509_get0_pubkey(crt) || (der_len = evp_form(alg, sig, sig_len, der, &s)) < 0)
            return 0;
        return sm2_verify_message(X509_get0_pubkey(crt), m, m_len, s, (size_t)der_len);
    }
    return (n = websig_digest(crt, alg, m, m_len, digest)) && websig_verify_digest(crt, alg, digest, n, sig, sig_len);
}

int websig_verify(X509 *crt, enum websig_alg alg, const char *origin, const char *challenge,
                  const unsigned char *sig, size_t sig_len)
{
    unsigned char m[96];
    size_t n = websig_login_message(alg, origin, challenge, m);
    return n && websig_verify_message(crt, alg, m, n, sig, sig_len);
}

int websig_verify_data(X509 *crt, enum websig_alg alg, const unsigned char *data, size_t len,
                       const unsigned char *sig, size_t sig_len)
{
    unsigned char digest[64], raw[2 * 66];
    unsigned int n = 0;
    size_t ec = algs[alg].ec;
    EVP_MD *md;
    int ok;
    if (!X509_get0_pubkey(crt))
        return 0;
    if (alg == WEBSIG_SM2_SM3)
        return sm2_verify_message(X509_get0_pubkey(crt), data, len, sig, sig_len);
    if (ec && sigenc_ecdsa_der_to_raw(sig, sig_len, ec, raw) != 0)
        return 0;
    md = EVP_MD_fetch(NULL, algs[alg].md, NULL);
    ok = md && EVP_Digest(data, len, digest, &n, md, NULL);
    EVP_MD_free(md);
    return ok && websig_verify_digest(crt, alg, digest, n, ec ? raw : sig, ec ? 2 * ec : sig_len);
}
