/* Fuzz target: login tokens as a portal's back end receives them, through
 * libukeyverify (issue 8: "the Web eID token parsing in libukeyverify"). The
 * trust anchor is the protocol test CA. */
#include <ukey/verify.h>

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ukey_verifier *v;
    struct ukey_verify_info info;
    if (!v) {
        const char *anchors = getenv("UKEY_FUZZ_ANCHORS");
        ukey_verifier_create(&v);
        ukey_verifier_add_trust_anchors(v, anchors ? anchors : "tests/data/protocol/ca.pem");
        ukey_verifier_set_time(v, 1800000000);
    }
    ukey_verify_token(v, (const char *)data, size, "https://portal.example.gov.cn",
                      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &info);
    return 0;
}
