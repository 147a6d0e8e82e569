/* Fuzz target: login tokens as a portal's back end receives them, through
 * libukeyverify (issue 8: "the Web eID token parsing in libukeyverify"). The
 * trust anchors are the protocol test CAs, ECDSA and SM2 (UKEY_FUZZ_DATA). */
#include <ukey/verify.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ukey_verifier *v;
    struct ukey_verify_info info;
    if (!v) {
        const char *dir = getenv("UKEY_FUZZ_DATA");
        char path[4200];
        ukey_verifier_create(&v);
        snprintf(path, sizeof path, "%s/protocol/ca.pem", dir ? dir : "tests/data");
        ukey_verifier_add_trust_anchors(v, path);
        snprintf(path, sizeof path, "%s/protocol/sm2-ca.pem", dir ? dir : "tests/data");
        ukey_verifier_add_trust_anchors(v, path);
        ukey_verifier_set_time(v, 1800000000);
    }
    ukey_verify_token(v, (const char *)data, size, "https://portal.example.gov.cn",
                      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &info);
    return 0;
}
