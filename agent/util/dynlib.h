/*
 * Loading a vendor's library (PKCS#11 modules, SKF libraries) and finding
 * its functions: dlopen on Linux (dynlib.c), LoadLibraryExW on Windows
 * (dynlib_win.c), behind one interface.
 *
 * On Windows a library is looked for only where it is named and in
 * System32 (LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR | LOAD_LIBRARY_SEARCH_SYSTEM32),
 * never in the current directory or along PATH, where anyone could plant a
 * DLL of the same name; its own dependencies are looked for the same way.
 * There is no unloading: vendor libraries start threads and register exit
 * handlers of their own, so they stay mapped until the process ends.
 */
#ifndef UKEY_UTIL_DYNLIB_H
#define UKEY_UTIL_DYNLIB_H

#include <stddef.h>
#include <string.h>

/* Where a path's directory part ends: '/' everywhere, '\\' too on Windows. */
#ifdef _WIN32
#define DYNLIB_DIR_SEPS "/\\"
#else
#define DYNLIB_DIR_SEPS "/"
#endif

struct dynlib;

/*
 * Loads the library at `path` (UTF-8) with every symbol resolved now.
 * Returns it, or NULL with the reason (English, UTF-8, one line) in `why`.
 */
struct dynlib *dynlib_open(const char *path, char *why, size_t why_len);

/* The address of `name` in `lib`, or NULL when it does not export it. */
void *dynlib_sym(struct dynlib *lib, const char *name);

/* The file-name part of `path` (a pointer into it). */
static inline const char *dynlib_file_name(const char *path)
{
    const char *name = path;
    for (const char *p = path; *p; p++)
        if (strchr(DYNLIB_DIR_SEPS, *p))
            name = p + 1;
    return name;
}

#endif
