/* OCSP answers from the real `openssl ocsp` responder (tests/data/ocsp,
 * made by make.py), and the same answers damaged: every verdict the
 * parser can give, and a clear error for everything else. */
#include "check.h"

#include "util/file.h"
#include "x509/crt.h"
#include "x509/ocsp.h"

#include <mbedtls/asn1.h>
#include <stdlib.h>
#include <time.h>

static char dir[4096];

static X509 *load_crt(const char *name)
{
    char path[4200];
    STACK_OF(X509) *sk = sk_X509_new_null();
    X509 *c;
    snprintf(path, sizeof path, "%s/%s.pem", dir, name);
    CHECK(sk && x509_stack_add_file(sk, path) == 1);
    c = sk_X509_shift(sk);
    sk_X509_free(sk);
    return c;
}

static unsigned char *load(const char *name, size_t *len)
{
    char path[4200];
    unsigned char *data;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    data = (unsigned char *)file_read_all(path, 1 << 20, len);
    CHECK(data != NULL);
    return data;
}

/* ocsp_check on the answer in file `name`; 0 or -1, with `err`. */
static int check_file(const char *name, X509 *crt, X509 *issuer,
                      const unsigned char *nonce, time_t now, struct ocsp_result *r, char *err)
{
    size_t len = 0;
    unsigned char *der = load(name, &len);
    int rc = der ? ocsp_check(der, len, crt, issuer, nonce, now, r, err, 256) : -2;
    free(der);
    return rc;
}

int main(void)
{
    const char *src = getenv("UKEY_SOURCE_DIR");
    X509 *inter, *valid, *revoked, *unknown;
    struct ocsp_result r;
    unsigned char nonce[OCSP_NONCE_LEN], other[OCSP_NONCE_LEN], buf[1024], *req, *req_file, *der;
    size_t req_len, req_file_len = 0, len = 0;
    time_t now = time(NULL);
    char err[256];

    snprintf(dir, sizeof dir, "%s/tests/data/ocsp", src ? src : ".");
    inter = load_crt("inter");
    valid = load_crt("valid");
    revoked = load_crt("revoked");
    unknown = load_crt("unknown");

    /* good / revoked / unknown, signed by the delegated responder */
    CHECK(check_file("good.der", valid, inter, NULL, now, &r, err) == 0);
    CHECK(r.status == OCSP_GOOD && r.delegated == 1 && r.nonce_matched == 0 && r.next_update > now);
    CHECK(check_file("revoked.der", revoked, inter, NULL, now, &r, err) == 0);
    CHECK(r.status == OCSP_REVOKED && r.revoked_at > 0 && r.revoked_at <= r.this_update);
    CHECK(check_file("unknown.der", unknown, inter, NULL, now, &r, err) == 0);
    CHECK(r.status == OCSP_UNKNOWN);
    /* signed by the issuer itself */
    CHECK(check_file("issuer-signed.der", valid, inter, NULL, now, &r, err) == 0);
    CHECK(r.status == OCSP_GOOD && r.delegated == 0);
    /* signed by a certificate without id-kp-OCSPSigning */
    CHECK(check_file("rogue-signed.der", valid, inter, NULL, now, &r, err) == -1);
    CHECK(strstr(err, "neither by the issuer") != NULL);
    /* an answer about another certificate */
    CHECK(check_file("good.der", revoked, inter, NULL, now, &r, err) == -1);
    CHECK(strstr(err, "another certificate") != NULL);
    /* an issuer that did not sign it */
    CHECK(check_file("good.der", valid, valid, NULL, now, &r, err) == -1);
    /* stale after nextUpdate; from the future before thisUpdate */
    CHECK(check_file("good.der", valid, inter, NULL, now + 20L * 365 * 86400, &r, err) == -1);
    CHECK(strstr(err, "stale") != NULL);
    CHECK(check_file("good.der", valid, inter, NULL, 1000000000, &r, err) == -1);
    CHECK(strstr(err, "future") != NULL);

    /* The nonce: the one openssl sent comes back; another one is refused. */
    req_file = load("good-nonce.req", &req_file_len);
    CHECK(req_file && req_file_len > OCSP_NONCE_LEN);
    if (req_file) {
        memcpy(nonce, req_file + req_file_len - OCSP_NONCE_LEN, OCSP_NONCE_LEN);
        memcpy(other, nonce, sizeof other);
        other[0] ^= 1;
        CHECK(check_file("good-nonce.der", valid, inter, nonce, now, &r, err) == 0 && r.nonce_matched == 1);
        CHECK(check_file("good-nonce.der", valid, inter, other, now, &r, err) == -1);
        CHECK(strstr(err, "nonce") != NULL);
        CHECK(check_file("good-nonce.der", valid, inter, NULL, now, &r, err) == 0 && r.nonce_matched == 0);
        /* Our request is byte for byte what openssl builds (same CertID, same nonce). */
        CHECK(ocsp_request(valid, inter, nonce, buf, sizeof buf, &req, &req_len) == 0);
        CHECK(req_len == req_file_len && memcmp(req, req_file, req_len) == 0);
        /* Too small a buffer: an error, not an overflow. */
        CHECK(ocsp_request(valid, inter, nonce, buf, 40, &req, &req_len) == -1);
    }
    free(req_file);

    /* Damaged answers: every prefix, and every byte flipped, give an error
     * or (for bytes outside the signed data and the structure) the same verdict. */
    der = load("good.der", &len);
    for (size_t cut = 0; der && cut < len; cut++)
        CHECK(ocsp_check(der, cut, valid, inter, NULL, now, &r, err, sizeof err) == -1);
    for (size_t i = 0; der && i < len; i++) {
        int rc;
        der[i] ^= 0x01;
        rc = ocsp_check(der, len, valid, inter, NULL, now, &r, err, sizeof err);
        CHECK(rc == -1 || (rc == 0 && r.status == OCSP_GOOD));
        der[i] ^= 0x01;
    }
    /* A refusal: responseStatus tryLater (3), no body. */
    {
        static const unsigned char try_later[] = {0x30, 0x03, 0x0a, 0x01, 0x03};
        CHECK(ocsp_check(try_later, sizeof try_later, valid, inter, NULL, now, &r, err, sizeof err) == -1);
        CHECK(strstr(err, "tryLater") != NULL);
    }
    free(der);
    X509_free(inter);
    X509_free(valid);
    X509_free(revoked);
    X509_free(unknown);
    return check_done();
}
