/* dynlib.h over LoadLibraryExW (Windows). */
#include "util/dynlib.h"

#include "util/winerr.h"
#include "util/wstr.h"

#include <stdio.h>
#include <stdlib.h>
#include <windows.h>

/*
 * LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR needs a full path: a path with a
 * directory part is made one (relative to the current directory, '/' as
 * '\'); a bare file name is looked for in System32 alone, where vendors'
 * installers put their modules.
 */
struct dynlib *dynlib_open(const char *path, char *why, size_t why_len)
{
    wchar_t *w = wstr_from_utf8(path), *full = NULL;
    DWORD flags = LOAD_LIBRARY_SEARCH_SYSTEM32, n;
    HMODULE h = NULL;
    DWORD old_mode;

    if (!w) {
        snprintf(why, why_len, "the path is not valid UTF-8");
        return NULL;
    }
    if (dynlib_file_name(path) != path) {
        if (!(n = GetFullPathNameW(w, 0, NULL, NULL)) || !(full = malloc(n * sizeof *full)) ||
            GetFullPathNameW(w, n, full, NULL) >= n) {
            snprintf(why, why_len, "the path cannot be resolved");
            goto out;
        }
        flags |= LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR;
    }
    /* A missing dependency must fail the call, not open a dialog box. */
    if (!SetThreadErrorMode(SEM_FAILCRITICALERRORS | SEM_NOOPENFILEERRORBOX, &old_mode))
        old_mode = 0;
    h = LoadLibraryExW(full ? full : w, NULL, flags);
    if (!h)
        winerr_text(GetLastError(), NULL, why, why_len);
    SetThreadErrorMode(old_mode, NULL);
out:
    free(full);
    free(w);
    return (struct dynlib *)h;
}

void *dynlib_sym(struct dynlib *lib, const char *name)
{
    FARPROC f = GetProcAddress((HMODULE)lib, name);
    void *p;
    /* A function's address as a data pointer, as dlsym gives it (POSIX). */
    memcpy(&p, &f, sizeof p);
    return p;
}
