/* SM2 as the agent computes it (x509/sm2.c): SM3, Z_A and e against the
 * vectors of GM/T 0003.5-2012 / GB/T 32918.5-2016 Annex A, the standard's
 * signature checked by OpenSSL over e and over the message, and the
 * SM2-SM3 login vector of docs/PROTOCOL.md. */
#include "check.h"

#include "x509/crt.h"
#include "x509/sigenc.h"
#include "x509/sm2.h"

#include <openssl/evp.h>
#include <stdlib.h>

static void unhex(const char *h, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sscanf(h + 2 * i, "%2hhx", &out[i]);
}

static int same(const unsigned char *got, const char *want_hex, size_t n)
{
    unsigned char want[128];
    unhex(want_hex, want, n);
    return memcmp(got, want, n) == 0;
}

/* 1 if the DER signature of r||s (hex) verifies over the 32-byte e. */
static int verifies_e(EVP_PKEY *key, const unsigned char e[32], const char *rs_hex)
{
    unsigned char rs[64], der[80];
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    int n, ok;
    unhex(rs_hex, rs, 64);
    n = sigenc_ecdsa_raw_to_der(rs, 32, der, sizeof der);
    ok = ctx && n > 0 && EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_verify(ctx, der, (size_t)n, e, 32) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* 1 if it verifies over the message through OpenSSL's own Z_A, with the ID set. */
static int verifies_message(EVP_PKEY *key, const unsigned char *m, size_t m_len, const char *rs_hex)
{
    unsigned char rs[64], der[80];
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    int n, ok = 0;
    unhex(rs_hex, rs, 64);
    n = sigenc_ecdsa_raw_to_der(rs, 32, der, sizeof der);
    if (mctx && pctx && n > 0 && EVP_PKEY_CTX_set1_id(pctx, X509_SM2_DEFAULT_ID, 16) == 1) {
        EVP_MD_CTX_set_pkey_ctx(mctx, pctx);
        ok = EVP_DigestVerifyInit(mctx, NULL, EVP_sm3(), NULL, key) == 1 &&
             EVP_DigestVerify(mctx, der, (size_t)n, m, m_len) == 1;
    }
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

int main(void)
{
    /* GM/T 0003.5 Annex A: the public key of d = 3945208F...4DF7C5B8. */
    static const char *point_hex = "0409F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
                                   "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";
    static const char *std_rs = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
                                "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";
    /* docs/PROTOCOL.md, SM2-SM3: the same key, a login's origin and challenge. */
    static const char *origin = "https://portal.example.gov.cn";
    static const char *challenge = "pXjCbpPNv5k1cWOBHWGXD8lxCv1ZRyNCUbuGW9iOeVE=";
    static const char *login_rs = "101d99109e7679def5b08889ab6a7e23f430132a6fb326af6d34911ae8ac4d2f"
                                  "04d52075fdd92e7438d993246a32fb15065d84a0a08bdd7edb238f8490b62172";
    unsigned char point[65], h[32], z[32], e[32], m[64], abcd[64];
    EVP_PKEY *key;

    CHECK(sm3("abc", 3, h) == 0 && same(h, "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0", 32));
    for (int i = 0; i < 16; i++)
        memcpy(abcd + 4 * i, "abcd", 4);
    CHECK(sm3(abcd, 64, h) == 0 && same(h, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732", 32));

    unhex(point_hex, point, 65);
    key = sm2_key_from_point(point);
    CHECK(key != NULL);
    CHECK(sm2_z(key, z) == 0 && same(z, "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3", 32));
    CHECK(sm2_e(key, (const unsigned char *)"message digest", 14, e) == 0 &&
          same(e, "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640", 32));
    /* The standard's signature: over e as a token signs it, and over M. */
    CHECK(verifies_e(key, e, std_rs));
    CHECK(verifies_message(key, (const unsigned char *)"message digest", 14, std_rs));
    e[0] ^= 1;
    CHECK(!verifies_e(key, e, std_rs));

    /* The login vector: M = SM3(origin) || SM3(challenge), e = SM3(Z_A || M). */
    CHECK(sm3(origin, strlen(origin), m) == 0 && sm3(challenge, strlen(challenge), m + 32) == 0);
    CHECK(same(m, "da664272c68ce317bd0b7715a93047b1ec73ee53cb78f52e64b03655ede725b7"
                  "9119bdbfbc23ef4d0821a8e9ca193d2ec9310eeb2ca02466f90b103d8147206e", 64));
    CHECK(sm2_e(key, m, 64, e) == 0 && same(e, "14638add141cd0215a1f4ac2d32dc79b1a190aaffc156b9c660cb6c021741695", 32));
    CHECK(verifies_e(key, e, login_rs));
    CHECK(verifies_message(key, m, 64, login_rs));
    m[63] ^= 1;
    CHECK(!verifies_message(key, m, 64, login_rs));
    EVP_PKEY_free(key);

    /* A point off the curve, and no key at all. */
    point[64] ^= 1;
    CHECK(sm2_key_from_point(point) == NULL);
    CHECK(sm2_z(NULL, z) == -1);
    return check_done();
}
