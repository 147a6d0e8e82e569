/* GET /api/v1/diagnostics and POST /api/v1/certificates/check: the checks
 * in the language asked for (?lang=, else Accept-Language), failures first.
 * Both may wait on CRL/OCSP servers, so the router runs them off the HTTP
 * threads (ROUTE_SLOW). */
#include "api/api.h"

#include "diag/checks.h"
#include "x509/crt.h"

#include <mbedtls/base64.h>
#include <stdlib.h>
#include <string.h>

/* A version a portal passes: digits and dots only, else ignored. */
static const char *plain_version(const char *v)
{
    return v && *v && strlen(v) <= 32 && strspn(v, "0123456789.") == strlen(v) ? v : NULL;
}

static void options_for(const struct api_request *req, struct diag_options *opt)
{
    const char *lang = req->query(req, "lang"), *mask = req->query(req, "mask_names");
    memset(opt, 0, sizeof *opt);
    opt->lang = diag_lang_from(lang ? lang : req->header(req, "Accept-Language"));
    opt->mask_names = mask && strcmp(mask, "0") != 0 && strcmp(mask, "false") != 0;
    /* Portals get no allow-list and no home directory (it names the OS user). */
    opt->owner = !req->origin || api_origin_is_self(req);
    diag_options_from_config(opt, req->agent->cfg);
}

ukey_err api_diagnostics(const struct api_request *req, struct api_reply *reply)
{
    struct diag_options opt;
    options_for(req, &opt);
    opt.min_version = plain_version(req->query(req, "min_version"));
    reply->json = diag_run(&opt);
    return reply->json ? UKEY_OK : UKEY_ERR_OUT_OF_MEMORY;
}

/* Adds the certificate(s) given as PEM (one or more) or Base64 DER to `list`. */
static int add_certificate(STACK_OF(X509) *list, const char *text)
{
    unsigned char der[16384];
    size_t len = 0, n = strlen(text);
    if (n > 65536)
        return -1;
    if (strstr(text, "-----BEGIN CERTIFICATE-----"))
        return x509_stack_add(list, (const unsigned char *)text, n) > 0 ? 0 : -1;
    if (mbedtls_base64_decode(der, sizeof der, &len, (const unsigned char *)text, n) != 0)
        return -1;
    return x509_stack_add(list, der, len) > 0 ? 0 : -1;
}

/* {"certificate": PEM or Base64 DER, "intermediates": [...]} */
ukey_err api_certificates_check(const struct api_request *req, struct api_reply *reply)
{
    json_t *cert = json_object_get(req->body, "certificate"), *more = json_object_get(req->body, "intermediates"), *v;
    /* The certificate first, then any after it in the PEM and the intermediates. */
    STACK_OF(X509) *list = sk_X509_new_null();
    struct diag_options opt;
    ukey_err e = UKEY_ERR_CERT_INVALID;
    unsigned char *der = NULL;
    X509 *given;
    int len;
    size_t i;

    if (!list)
        return UKEY_ERR_OUT_OF_MEMORY;
    if (!json_is_string(cert) || (more && (!json_is_array(more) || json_array_size(more) > 8)) ||
        add_certificate(list, json_string_value(cert)) != 0)
        goto out;
    json_array_foreach(more, i, v)
        if (!json_is_string(v) || add_certificate(list, json_string_value(v)) != 0)
            goto out;
    given = sk_X509_shift(list);
    len = x509_der(given, &der);
    X509_free(given);
    if (len <= 0) {
        e = UKEY_ERR_OUT_OF_MEMORY;
        goto out;
    }
    options_for(req, &opt);
    reply->json = diag_check_certificate(&opt, der, (size_t)len, list);
    e = reply->json ? UKEY_OK : UKEY_ERR_OUT_OF_MEMORY;
out:
    OPENSSL_free(der);
    sk_X509_pop_free(list, X509_free);
    return e;
}
