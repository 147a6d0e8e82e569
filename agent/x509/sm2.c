/* SM2's Z_A and e; see sm2.h. */
#include "x509/sm2.h"

#include "x509/crt.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <string.h>

/* sm2p256v1 (GM/T 0003.5, GB/T 32918.5): a, b, x_G, y_G. */
static const unsigned char curve[128] = {
    0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFC,
    0x28, 0xE9, 0xFA, 0x9E, 0x9D, 0x9F, 0x5E, 0x34, 0x4D, 0x5A, 0x9E, 0x4B, 0xCF, 0x65, 0x09, 0xA7,
    0xF3, 0x97, 0x89, 0xF5, 0x15, 0xAB, 0x8F, 0x92, 0xDD, 0xBC, 0xBD, 0x41, 0x4D, 0x94, 0x0E, 0x93,
    0x32, 0xC4, 0xAE, 0x2C, 0x1F, 0x19, 0x81, 0x19, 0x5F, 0x99, 0x04, 0x46, 0x6A, 0x39, 0xC9, 0x94,
    0x8F, 0xE3, 0x0B, 0xBF, 0xF2, 0x66, 0x0B, 0xE1, 0x71, 0x5A, 0x45, 0x89, 0x33, 0x4C, 0x74, 0xC7,
    0xBC, 0x37, 0x36, 0xA2, 0xF4, 0xF6, 0x77, 0x9C, 0x59, 0xBD, 0xCE, 0xE3, 0x6B, 0x69, 0x21, 0x53,
    0xD0, 0xA9, 0x87, 0x7C, 0xC6, 0x2A, 0x47, 0x40, 0x02, 0xDF, 0x32, 0xE5, 0x21, 0x39, 0xF0, 0xA0,
};

/* SM3 over the concatenation of `n` pieces. 0 or -1. */
static int sm3_of(const void *const *pieces, const size_t *lens, int n, unsigned char out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_MD *md = EVP_MD_fetch(NULL, "SM3", NULL);
    unsigned int len = 0;
    int ok = ctx && md && EVP_DigestInit_ex(ctx, md, NULL);
    for (int i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(ctx, pieces[i], lens[i]);
    ok = ok && EVP_DigestFinal_ex(ctx, out, &len) && len == 32;
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
    ERR_clear_error();
    return ok ? 0 : -1;
}

int sm3(const void *in, size_t len, unsigned char out[32])
{
    const void *pieces[] = {in};
    return sm3_of(pieces, &len, 1, out);
}

int sm2_z(EVP_PKEY *key, unsigned char z[32])
{
    static const unsigned char entl[2] = {0x00, 8 * (sizeof X509_SM2_DEFAULT_ID - 1)};
    unsigned char point[65];
    size_t point_len = 0;
    const void *pieces[] = {entl, X509_SM2_DEFAULT_ID, curve, point + 1};
    size_t lens[] = {2, sizeof X509_SM2_DEFAULT_ID - 1, sizeof curve, 64};
    if (!key || !EVP_PKEY_is_a(key, "SM2") ||
        !EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof point, &point_len) ||
        point_len != 65 || point[0] != 0x04) {
        ERR_clear_error();
        return -1;
    }
    return sm3_of(pieces, lens, 4, z);
}

int sm2_e(EVP_PKEY *key, const unsigned char *m, size_t m_len, unsigned char e[32])
{
    unsigned char z[32];
    const void *pieces[] = {z, m};
    size_t lens[] = {32, m_len};
    return sm2_z(key, z) == 0 ? sm3_of(pieces, lens, 2, e) : -1;
}

EVP_PKEY *sm2_key_from_point(const unsigned char point[65])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY *key = NULL;
    if (ctx && bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "SM2", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 65) &&
        (params = OSSL_PARAM_BLD_to_param(bld)) && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = NULL;
    if (key) { /* fromdata takes any bytes: the point must be on the curve */
        EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
        if (!check || EVP_PKEY_public_check(check) != 1) {
            EVP_PKEY_free(key);
            key = NULL;
        }
        EVP_PKEY_CTX_free(check);
    }
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return key;
}
