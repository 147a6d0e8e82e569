/*
 * A Windows error code as one line of UTF-8 for logs and error details
 * (Windows only; winerr_win.c).
 */
#ifndef UKEY_UTIL_WINERR_H
#define UKEY_UTIL_WINERR_H

#include <stddef.h>
#include <wchar.h>

/* "<the system's text> (error <code>)" into `out`: in English when the
 * system has it, else in the user's language. `module` (may be NULL)
 * names a loaded DLL whose own messages are looked up first (winhttp.dll). */
void winerr_text(unsigned long code, const wchar_t *module, char *out, size_t cap);

#endif
