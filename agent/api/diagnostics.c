/* GET /api/v1/diagnostics[?lang=zh-CN|en][&min_version=X.Y.Z]: every check,
 * failures first, in the language asked for (else from Accept-Language). */
#include "api/api.h"

#include "diag/checks.h"

#include <string.h>

/* A version a portal passes: digits and dots only, else ignored. */
static const char *plain_version(const char *v)
{
    return v && *v && strlen(v) <= 32 && strspn(v, "0123456789.") == strlen(v) ? v : NULL;
}

ukey_err api_diagnostics(const struct api_request *req, struct api_reply *reply)
{
    const char *lang = req->query(req, "lang");
    struct diag_options opt = {
        .lang = diag_lang_from(lang ? lang : req->header(req, "Accept-Language")),
        .min_version = plain_version(req->query(req, "min_version")),
        .state_dir = req->agent->cfg->state_dir,
        .ca_file = req->agent->cfg->ca_file,
    };
    reply->json = diag_run(&opt);
    return reply->json ? UKEY_OK : UKEY_ERR_OUT_OF_MEMORY;
}
