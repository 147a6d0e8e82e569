/* GET /api/v1/status: who is listening and whether PC/SC works. */
#include "api/api.h"

#include "token/pcsc.h"

ukey_err api_status(const struct api_request *req, struct api_reply *reply)
{
    struct pcsc_probe probe;
    pcsc_probe(&probe);
    reply->json = json_pack("{s:s, s:s, s:s, s:s, s:{s:b, s:s*, s:s*}, s:i, s:i}",
                            "name", "ukey-agent",
                            "version", UKEY_VERSION,
                            "protocol", "web-eid:1.0",
                            "api", "v1",
                            "pcsc",
                              "available", probe.available,
                              "error", probe.available ? NULL : probe.error_code,
                              "detail", probe.available ? NULL : probe.detail,
                            "readers", probe.readers,
                            "cards", probe.cards);
    (void)req;
    return reply->json ? UKEY_OK : UKEY_ERR_OUT_OF_MEMORY;
}
