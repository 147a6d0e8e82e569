/* Windows error codes as text; see winerr.h. */
#include "util/winerr.h"

#include "util/wstr.h"

#include <stdio.h>
#include <stdlib.h>
#include <windows.h>

static wchar_t *message(DWORD flags, HMODULE from, DWORD code)
{
    wchar_t *w = NULL;
    if (!FormatMessageW(flags, from, code, MAKELANGID(LANG_ENGLISH, SUBLANG_ENGLISH_US), (LPWSTR)&w, 0, NULL) &&
        !FormatMessageW(flags, from, code, 0, (LPWSTR)&w, 0, NULL))
        return NULL;
    return w;
}

void winerr_text(unsigned long code, const wchar_t *module, char *out, size_t cap)
{
    const DWORD flags = FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_IGNORE_INSERTS;
    HMODULE from = module ? GetModuleHandleW(module) : NULL;
    wchar_t *w = from ? message(flags | FORMAT_MESSAGE_FROM_HMODULE, from, code) : NULL;
    char *text = NULL;
    if (!w)
        w = message(flags | FORMAT_MESSAGE_FROM_SYSTEM, NULL, code);
    if (w) {
        /* One line: the system's texts end in ".\r\n". */
        size_t n = wcslen(w);
        while (n > 0 && (w[n - 1] == L'\r' || w[n - 1] == L'\n' || w[n - 1] == L' ' || w[n - 1] == L'.'))
            w[--n] = L'\0';
        for (size_t i = 0; i < n; i++)
            if (w[i] == L'\r' || w[i] == L'\n')
                w[i] = L' ';
        text = wstr_to_utf8(w);
        LocalFree(w);
    }
    snprintf(out, cap, "%s (error %lu)", text ? text : "unknown error", code);
    free(text);
}
