/* Fuzz target: origin syntax and matching, Host allow-list, JSON content
 * type (security.md 8.7 item 1). Input: pattern "\n" origin "\n" host. */
#include "server/guard.h"
#include "util/origin.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *parts[3] = {"", "", ""};
    struct guard_policy pol;
    struct guard_request req = {0};
    const char *cors;
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    parts[0] = text;
    for (int i = 1; i < 3; i++) {
        char *nl = strchr(parts[i - 1], '\n');
        if (!nl)
            break;
        *nl = '\0';
        parts[i] = nl + 1;
    }
    origin_valid(parts[1]);
    if (origin_matches(parts[0], parts[1]) && !origin_valid(parts[1]))
        abort(); /* a match must be a well-formed origin */
    guard_policy_init(&pol, 27443, &parts[0], origin_pattern_valid(parts[0]) ? 1 : 0);
    req.host = parts[2];
    req.host_count = 1;
    req.origin = parts[1];
    req.origin_count = 1;
    req.is_api = 1;
    if (guard_check(&pol, &req, &cors) == UKEY_OK && cors && strcmp(cors, parts[1]) != 0)
        abort(); /* CORS may only ever echo the request's own origin */
    guard_content_type_json(parts[2]);
    free(text);
    return 0;
}
