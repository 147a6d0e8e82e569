/* Origin syntax and allow-list matching; see origin.h. */
#include "util/origin.h"

#include <string.h>

/* Length of a DNS host or IPv4 literal at `s` (lower-case labels of
 * [a-z0-9-], no empty label, no leading/trailing '-'), or 0 if invalid. */
static size_t host_name_len(const char *s)
{
    size_t i = 0, label = 0;
    for (;; i++) {
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            if (c == '-' && label == 0)
                return 0;
            if (++label > 63)
                return 0;
            continue;
        }
        if (label == 0 || s[i - 1] == '-')
            return 0;
        if (c != '.')
            break;
        label = 0;
    }
    return i > 253 ? 0 : i;
}

/* Length of "[v6]" at `s`: hex digits, ':' and '.', at most 45 inside. */
static size_t host_v6_len(const char *s)
{
    size_t i = 1;
    if (s[0] != '[')
        return 0;
    for (; s[i] && s[i] != ']'; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.'))
            return 0;
    }
    if (s[i] != ']' || i < 3 || i > 46)
        return 0;
    return i + 1;
}

/* 1 if `s` is empty or ":port" with 1..65535 and no leading zero. */
static int port_part_valid(const char *s)
{
    unsigned long v = 0;
    if (*s == '\0')
        return 1;
    if (*s++ != ':' || *s < '1' || *s > '9')
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            return 0;
    }
    return 1;
}

static const char *after_scheme(const char *s)
{
    if (strncmp(s, "https://", 8) == 0)
        return s + 8;
    if (strncmp(s, "http://", 7) == 0)
        return s + 7;
    return NULL;
}

int origin_valid(const char *s)
{
    const char *h = s ? after_scheme(s) : NULL;
    size_t n;
    if (!h)
        return 0;
    n = h[0] == '[' ? host_v6_len(h) : host_name_len(h);
    return n > 0 && port_part_valid(h + n);
}

int origin_pattern_valid(const char *p)
{
    if (!p)
        return 0;
    if (strncmp(p, "https://*.", 10) == 0) {
        size_t n = host_name_len(p + 10);
        /* The domain must have at least two labels: no wildcard over a bare TLD such as *.cn. */
        return n > 0 && memchr(p + 10, '.', n) && port_part_valid(p + 10 + n);
    }
    return origin_valid(p);
}

int origin_matches(const char *p, const char *o)
{
    if (!origin_pattern_valid(p) || !origin_valid(o))
        return 0;
    if (strncmp(p, "https://*.", 10) != 0)
        return strcmp(p, o) == 0;
    /* o = "https://" sub "." domain [port], p = the wildcard "*." domain [port] */
    const char *suffix = p + 9; /* ".domain[:port]" */
    size_t ls = strlen(suffix), lo = strlen(o);
    if (strncmp(o, "https://", 8) != 0 || o[8] == '[' || lo <= 8 + ls)
        return 0;
    return strcmp(o + lo - ls, suffix) == 0 && o[lo - ls - 1] != '.';
}
