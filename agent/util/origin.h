/*
 * Web origins (RFC 6454 serialisation: scheme "://" host [":" port]) and the
 * allow-list patterns the agent accepts in config and on the command line:
 *   - an exact origin:      https://portal.example.gov.cn  (or :port, or http://)
 *   - a subdomain pattern:  the scheme https:// then *.example.gov.cn (one or more labels
 *                           before .example.gov.cn; not the bare domain)
 * Matching is byte-exact against the browser's serialisation (lower case,
 * default port omitted): no substring, prefix or regex games (security.md WEB-02).
 */
#ifndef UKEY_UTIL_ORIGIN_H
#define UKEY_UTIL_ORIGIN_H

/* 1 if `s` is a well-formed serialised http/https origin, else 0. */
int origin_valid(const char *s);
/* 1 if `p` is a valid allow-list entry (exact origin or an https wildcard pattern). */
int origin_pattern_valid(const char *p);
/* 1 if origin `o` is allowed by pattern `p` (both must be valid), else 0. */
int origin_matches(const char *p, const char *o);

#endif
