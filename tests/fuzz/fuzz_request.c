/* Fuzz target: a request as the agent's HTTP layer hands it on (issue 8:
 * "the request guard + router + JSON body parsing of every endpoint"). The
 * input is a raw HTTP/1.1 request; libmicrohttpd's own parsing is not ours
 * to fuzz, so a small splitter stands in for it, then the same steps run as
 * in server/http.c: guard, Content-Type, route, JSON body, and the handler
 * of every route that stays on this machine (the ROUTE_SLOW ones fetch
 * URLs named in their input, so only their guard, route and body parsing
 * run here). No pcscd runs: card routes answer PCSC_UNAVAILABLE. */
#include "server/guard.h"
#include "server/router.h"
#include "util/rng.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FIELDS 32

struct fields {
    char *name[MAX_FIELDS], *value[MAX_FIELDS];
    size_t n;
};

struct fuzz_request {
    struct fields headers, query;
};

static const char *lookup(const struct fields *f, const char *key, int nocase)
{
    for (size_t i = 0; i < f->n; i++)
        if (nocase ? strcasecmp(f->name[i], key) == 0 : strcmp(f->name[i], key) == 0)
            return f->value[i];
    return NULL;
}

static const char *query(const struct api_request *req, const char *key)
{
    return lookup(&((struct fuzz_request *)req->http)->query, key, 0);
}

static const char *header(const struct api_request *req, const char *key)
{
    return lookup(&((struct fuzz_request *)req->http)->headers, key, 1);
}

/* Splits "a=b&c=d" in place. */
static void split_query(char *q, struct fields *f, char **save)
{
    for (char *pair = strtok_r(q, "&", save); pair && f->n < MAX_FIELDS; pair = strtok_r(NULL, "&", save)) {
        char *eq = strchr(pair, '=');
        f->name[f->n] = pair;
        f->value[f->n++] = eq ? (*eq = '\0', eq + 1) : pair + strlen(pair);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct agent_config cfg;
    static struct agent_ctx agent;
    static struct guard_policy policy;
    static char *origins[] = {"https://portal.example.gov.cn", "https://*.example.gov.cn"};
    static unsigned char legacy_sign[] = {1, 0};
    struct fuzz_request fr = {0};
    struct guard_request g = {0};
    struct api_request req = {0};
    struct api_reply reply = {0};
    const struct route *route;
    enum router_match match;
    char *text, *line, *end, *body, *path, *q, *lines, *words, *pairs, param[128], allow[64];
    const char *cors;
    size_t body_len;

    if (!agent.cfg) {
        config_defaults(&cfg);
        cfg.allow_origins = origins;
        cfg.n_allow_origins = 2;
        cfg.origin_pin_entry = calloc(2, sizeof *cfg.origin_pin_entry);
        cfg.origin_insecure_http = calloc(2, 1);
        cfg.origin_legacy_sign = legacy_sign; /* the portal may have data signed (POST /api/v1/sign) */
        cfg.state_dir = "/nonexistent/ukey-fuzz";
        agent.cfg = &cfg;
        agent.port = 27443;
        guard_policy_init(&policy, 27443, origins, 2);
        rng_init();
    }
    if (!(text = malloc(size + 1)))
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    /* Request line, headers up to the blank line, then the body. */
    if (!(end = strstr(text, "\r\n\r\n"))) {
        free(text);
        return 0;
    }
    *end = '\0';
    body = end + 4;
    body_len = size - (size_t)(body - text);
    line = strtok_r(text, "\r\n", &lines);
    req.method = line ? strtok_r(line, " ", &words) : NULL;
    path = req.method ? strtok_r(NULL, " ", &words) : NULL;
    if (!path) {
        free(text);
        return 0;
    }
    for (char *h = strtok_r(NULL, "\r\n", &lines); h && fr.headers.n < MAX_FIELDS; h = strtok_r(NULL, "\r\n", &lines)) {
        char *colon = strchr(h, ':');
        if (!colon)
            continue;
        *colon = '\0';
        fr.headers.name[fr.headers.n] = h;
        fr.headers.value[fr.headers.n++] = colon + 1 + strspn(colon + 1, " ");
    }
    if ((q = strchr(path, '?'))) {
        *q = '\0';
        split_query(q + 1, &fr.query, &pairs);
    }

    for (size_t i = 0; i < fr.headers.n; i++)
        guard_add_header(&g, fr.headers.name[i], fr.headers.value[i], strlen(fr.headers.value[i]));
    g.is_api = strncmp(path, "/api/", 5) == 0;
    if (guard_check(&policy, &g, &cors) != UKEY_OK ||
        (strcmp(req.method, "POST") == 0 && !guard_content_type_json(lookup(&fr.headers, "Content-Type", 1))) ||
        !(route = router_find(req.method, path, param, sizeof param, allow, sizeof allow, &match))) {
        free(text);
        return 0;
    }
    if ((router_path_flags(path) & ROUTE_SELF_ONLY) && !guard_from_self(&policy, &g)) {
        free(text);
        return 0;
    }
    if (route->flags & ROUTE_JSON_BODY) {
        json_error_t jerr;
        req.body = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(req.body)) {
            json_decref(req.body);
            free(text);
            return 0;
        }
    }
    if (route->handler && !(route->flags & ROUTE_SLOW)) {
        req.agent = &agent;
        req.path = path;
        req.origin = cors;
        req.param = param[0] ? param : NULL;
        req.query = query;
        req.header = header;
        req.http = &fr;
        route->handler(&req, &reply);
        json_decref(reply.json);
        json_decref(reply.error_extra);
    }
    json_decref(req.body);
    free(text);
    return 0;
}
