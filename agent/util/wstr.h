/*
 * UTF-8 inside the agent, UTF-16 at the Windows API (Windows only). Every
 * path, name and message crosses here, never through the ANSI (…A) calls,
 * whose code page (936 on a Chinese Windows) breaks non-ASCII user names.
 */
#ifndef UKEY_UTIL_WSTR_H
#define UKEY_UTIL_WSTR_H

#include <wchar.h>

/* A new UTF-16 copy of UTF-8 `s` (caller frees); NULL for invalid UTF-8
 * or no memory (errno EILSEQ or ENOMEM). */
wchar_t *wstr_from_utf8(const char *s);

/* A new UTF-8 copy of UTF-16 `w` (caller frees); NULL on error. */
char *wstr_to_utf8(const wchar_t *w);

#endif
