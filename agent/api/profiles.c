/*
 * GET /api/v1/profiles: the deployment profiles loaded (profile/profile.h):
 * names, hotline, service points, self-service links, reminder window and
 * minimum agent version; the files they came from for the agent's own pages
 * and local programs only.
 */
#include "api/api.h"

#include "profile/profile.h"

ukey_err api_profiles(const struct api_request *req, struct api_reply *reply)
{
    reply->json = profiles_json(!req->origin || api_origin_is_self(req));
    return reply->json ? UKEY_OK : UKEY_ERR_OUT_OF_MEMORY;
}
