/* GET /api/v1/status: who is listening, whether PC/SC works, and (to a
 * site) where its users type the PIN. */
#include "api/api.h"

#include "token/pcsc.h"

ukey_err api_status(const struct api_request *req, struct api_reply *reply)
{
    struct pcsc_probe probe;
    /* From the hotplug monitor: no PC/SC round trip per request. */
    pcsc_status(&probe);
    reply->json = json_pack("{s:s, s:s, s:s, s:s, s:{s:b, s:s*, s:s*}, s:i, s:i, s:s*}",
                            "name", "ukey-agent",
                            "version", UKEY_VERSION,
                            "protocol", "web-eid:1.0",
                            "api", "v1",
                            "pcsc",
                              "available", probe.available,
                              "error", probe.available ? NULL : probe.error_code,
                              "detail", probe.available ? NULL : probe.detail,
                            "readers", probe.readers,
                            "cards", probe.cards,
                            /* where this site's users type the PIN (issue 9) */
                            "pin_entry", !req->origin ? NULL : api_pin_from_page_allowed(req) ? "page" : "consent");
    /* The allow-list and each site's PIN policy, for the agent's own page
     * and local programs only (a same-origin GET carries no Origin). */
    if (reply->json && (!req->origin || api_origin_is_self(req))) {
        const struct agent_config *cfg = req->agent->cfg;
        json_t *list = json_array();
        for (size_t i = 0; i < cfg->n_allow_origins; i++) {
            enum pin_entry policy = cfg->origin_pin_entry[i] != PIN_ENTRY_DEFAULT ? cfg->origin_pin_entry[i] : cfg->pin_entry;
            json_array_append_new(list, json_pack("{s:s, s:s}", "origin", cfg->allow_origins[i], "pin_entry",
                                                  policy == PIN_ENTRY_PAGE ? "page" : "consent"));
        }
        json_object_set_new(reply->json, "allow_origins", list);
    }
    return reply->json ? UKEY_OK : UKEY_ERR_OUT_OF_MEMORY;
}
