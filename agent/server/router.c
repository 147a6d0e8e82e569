/* The route table and its matcher; see router.h. */
#include "server/router.h"

#include <string.h>

static const struct route routes[] = {
    {"GET", "/api/v1/status", api_status, 0},
    {"GET", "/api/v1/tokens", api_tokens, ROUTE_CARD},
    {"GET", "/api/v1/profiles", api_profiles, 0},
    {"GET", "/api/v1/events", NULL, ROUTE_EVENTS},
    {"POST", "/api/v1/tokens/{id}/pin/verify", api_pin_verify, ROUTE_JSON_BODY | ROUTE_CARD},
    {"POST", "/api/v1/tokens/{id}/pin/change", api_pin_change, ROUTE_JSON_BODY | ROUTE_CARD},
    {"POST", "/api/v1/tokens/{id}/pin/unblock", api_pin_unblock, ROUTE_JSON_BODY | ROUTE_CARD},
    {"POST", "/api/v1/login", api_login, ROUTE_JSON_BODY | ROUTE_CARD},
    {"GET", "/api/v1/login/{id}", api_login_result, 0},
    {"DELETE", "/api/v1/login/{id}", api_login_withdraw, ROUTE_JSON_BODY},
    {"POST", "/api/v1/sign", api_sign, ROUTE_JSON_BODY | ROUTE_CARD},
    {"GET", "/api/v1/sign/{id}", api_sign_result, 0},
    {"DELETE", "/api/v1/sign/{id}", api_sign_withdraw, ROUTE_JSON_BODY},
    {"GET", "/api/v1/consent/{id}", api_consent_info, ROUTE_SELF_ONLY | ROUTE_CARD},
    {"POST", "/api/v1/consent/{id}", api_consent_submit, ROUTE_JSON_BODY | ROUTE_SELF_ONLY | ROUTE_CARD},
    {"POST", "/api/v1/consent/{id}/cancel", api_consent_cancel, ROUTE_JSON_BODY | ROUTE_SELF_ONLY},
    {"GET", "/api/v1/diagnostics", api_diagnostics, ROUTE_SLOW},
    {"POST", "/api/v1/certificates/check", api_certificates_check, ROUTE_JSON_BODY | ROUTE_SLOW},
};

const struct route *router_table(size_t *count)
{
    *count = sizeof routes / sizeof routes[0];
    return routes;
}

/* 1 if `path` matches `pattern`; the "{id}" segment is copied to `param`. */
static int path_matches(const char *pattern, const char *path, char *param, size_t paramlen)
{
    while (*pattern && *path) {
        if (*pattern == '{' && strncmp(pattern, "{id}", 4) == 0) {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= paramlen)
                return 0;
            memcpy(param, path, n);
            param[n] = '\0';
            pattern += 4;
            path += n;
            continue;
        }
        if (*pattern++ != *path++)
            return 0;
    }
    return *pattern == '\0' && *path == '\0';
}

unsigned router_path_flags(const char *path)
{
    char scratch[128];
    unsigned flags = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (path_matches(routes[i].pattern, path, scratch, sizeof scratch))
            flags |= routes[i].flags;
    return flags;
}

const struct route *router_find(const char *method, const char *path, char *param,
                                size_t paramlen, char *allow, size_t allowlen,
                                enum router_match *match)
{
    const struct route *found = NULL;
    int path_seen = 0;
    char scratch[128];

    if (allowlen)
        allow[0] = '\0';
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        scratch[0] = '\0'; /* a route without {id} leaves it alone (found by valgrind) */
        if (!path_matches(routes[i].pattern, path, scratch, sizeof scratch))
            continue;
        path_seen = 1;
        if (allowlen && strlen(allow) + strlen(routes[i].method) + 3 < allowlen) {
            if (allow[0])
                strcat(allow, ", ");
            strcat(allow, routes[i].method);
        }
        if (!found && strcmp(routes[i].method, method) == 0) {
            found = &routes[i];
            if (paramlen) {
                strncpy(param, scratch, paramlen - 1);
                param[paramlen - 1] = '\0';
            }
        }
    }
    *match = found ? ROUTER_FOUND : path_seen ? ROUTER_NO_METHOD : ROUTER_NO_PATH;
    return found;
}
