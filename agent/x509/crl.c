/* CRL judgement; see crl.h. */
#include "x509/crl.h"

#include "x509/sigenc.h"
#include "x509/xtime.h"

#include <mbedtls/x509_crl.h>
#include <string.h>

static int serial_listed(const mbedtls_x509_crl *crl, const mbedtls_x509_crt *crt, time_t *when)
{
    for (const mbedtls_x509_crl_entry *e = &crl->entry; e && e->serial.len; e = e->next)
        if (e->serial.len == crt->serial.len && memcmp(e->serial.p, crt->serial.p, e->serial.len) == 0) {
            *when = x509_time_utc(&e->revocation_date);
            return 1;
        }
    return 0;
}

void crl_check(const unsigned char *body, size_t len, const mbedtls_x509_crt *crt, const mbedtls_x509_crt *issuer,
               time_t now, struct crl_check *out)
{
    mbedtls_x509_crl crl;
    memset(out, 0, sizeof *out);
    mbedtls_x509_crl_init(&crl);
    /* mbedTLS takes a PEM CRL as a string: its length counts the NUL. */
    if (len == 0 || mbedtls_x509_crl_parse(&crl, body, len + (body[0] == '-' ? 1 : 0)) != 0) {
        out->finding = CRL_NOT_A_CRL;
        goto out;
    }
    out->this_update = x509_time_utc(&crl.this_update);
    out->next_update = crl.next_update.year ? x509_time_utc(&crl.next_update) : 0;
    if (!issuer)
        out->finding = CRL_NO_ISSUER;
    else if (crl.issuer_raw.len != issuer->subject_raw.len ||
             memcmp(crl.issuer_raw.p, issuer->subject_raw.p, crl.issuer_raw.len) != 0)
        out->finding = CRL_OTHER_ISSUER;
    else if (!sigenc_verifies(&issuer->pk, crl.sig_md, crl.sig_pk, crl.sig_opts, crl.tbs.p, crl.tbs.len, crl.sig.p,
                              crl.sig.len))
        out->finding = CRL_BAD_SIGNATURE;
    else if (serial_listed(&crl, crt, &out->revoked_at))
        out->finding = CRL_REVOKED;
    else if (out->this_update > now + CRL_SLACK_S)
        out->finding = CRL_FUTURE;
    else if (out->next_update && out->next_update + CRL_SLACK_S < now)
        out->finding = CRL_STALE;
    else
        out->finding = CRL_GOOD;
out:
    mbedtls_x509_crl_free(&crl);
}
