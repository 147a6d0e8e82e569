/* The request guard; see guard.h. */
#include "server/guard.h"

#include "util/origin.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void guard_policy_init(struct guard_policy *policy, unsigned port, char *const *origins,
                       size_t n_origins)
{
    policy->port = port;
    policy->origins = origins;
    policy->n_origins = n_origins;
    snprintf(policy->self[0], sizeof policy->self[0], "https://127.0.0.1:%u", port);
    snprintf(policy->self[1], sizeof policy->self[1], "https://localhost:%u", port);
    snprintf(policy->self[2], sizeof policy->self[2], "https://[::1]:%u", port);
}

void guard_add_header(struct guard_request *req, const char *name, const char *value,
                      size_t value_len)
{
    if (memchr(value, '\0', value_len))
        req->nul = 1;
    if (strcasecmp(name, "Host") == 0) {
        if (req->host_count++ == 0)
            req->host = value;
    } else if (strcasecmp(name, "Origin") == 0) {
        if (req->origin_count++ == 0)
            req->origin = value;
    } else if (strcasecmp(name, "Sec-Fetch-Site") == 0) {
        if (!req->sec_fetch_site)
            req->sec_fetch_site = value;
    } else if (strcasecmp(name, "Content-Length") == 0) {
        req->content_length_count++;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        req->transfer_encoding_count++;
    }
}

int guard_host_allowed(const struct guard_policy *policy, const char *host)
{
    /* The self origins minus "https://" are exactly the allowed Host values. */
    if (!host)
        return 0;
    for (int i = 0; i < 3; i++)
        if (strcasecmp(host, policy->self[i] + 8) == 0)
            return 1;
    return 0;
}

int guard_origin_is_self(const struct guard_policy *policy, const char *origin)
{
    for (int i = 0; origin && i < 3; i++)
        if (strcmp(origin, policy->self[i]) == 0)
            return 1;
    return 0;
}

int guard_from_self(const struct guard_policy *policy, const struct guard_request *req)
{
    return req->origin ? guard_origin_is_self(policy, req->origin)
                       : req->sec_fetch_site && strcmp(req->sec_fetch_site, "same-origin") == 0;
}

int guard_origin_allowed(const struct guard_policy *policy, const char *origin)
{
    if (!origin)
        return 0;
    if (guard_origin_is_self(policy, origin))
        return 1;
    for (size_t i = 0; i < policy->n_origins; i++)
        if (origin_matches(policy->origins[i], origin))
            return 1;
    return 0;
}

ukey_err guard_check(const struct guard_policy *policy, const struct guard_request *req,
                     const char **cors_origin)
{
    *cors_origin = NULL;
    if (req->nul || req->host_count > 1 || req->origin_count > 1 || req->content_length_count > 1 ||
        (req->content_length_count && req->transfer_encoding_count))
        return UKEY_ERR_BAD_REQUEST;
    /* Invariant 2: DNS rebinding. Checked on every request, Origin or not. */
    if (!guard_host_allowed(policy, req->host))
        return UKEY_ERR_HOST_NOT_ALLOWED;
    if (req->origin) {
        /* Invariant 3: exact allow-list; "null" and malformed values never match. */
        if (!guard_origin_allowed(policy, req->origin))
            return UKEY_ERR_ORIGIN_NOT_ALLOWED;
        *cors_origin = req->origin;
        return UKEY_OK;
    }
    /* No Origin: a browser sends none for <img>, <script> or a navigation, but
     * tells us where the request came from in Sec-Fetch-Site. A cross-site or
     * same-site subresource must not reach the API; same-origin, a typed URL
     * ("none") and non-browser clients (no header) may. */
    if (req->is_api && req->sec_fetch_site &&
        (strcmp(req->sec_fetch_site, "cross-site") == 0 || strcmp(req->sec_fetch_site, "same-site") == 0))
        return UKEY_ERR_ORIGIN_NOT_ALLOWED;
    return UKEY_OK;
}

int guard_content_type_json(const char *ct)
{
    static const char json[] = "application/json";
    if (!ct || strncasecmp(ct, json, sizeof json - 1) != 0)
        return 0;
    ct += sizeof json - 1;
    while (*ct == ' ')
        ct++;
    if (*ct == '\0')
        return 1;
    if (*ct++ != ';')
        return 0;
    while (*ct == ' ')
        ct++;
    return strcasecmp(ct, "charset=utf-8") == 0;
}
