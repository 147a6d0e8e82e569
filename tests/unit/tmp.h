/*
 * Temporary directories and the environment for unit tests that also run
 * on Windows (under Wine): paths in UTF-8, through util/file.h.
 */
#ifndef UKEY_TESTS_TMP_H
#define UKEY_TESTS_TMP_H

#include "util/file.h"

#include <stdio.h>
#include <stdlib.h>
#ifdef _WIN32
#include "util/wstr.h"
#include <windows.h>
#else
#include <unistd.h>
#endif

/* A new directory "<temp>/<name>-<unique>" in `out`; 0 on success. */
static inline int tmp_dir(char *out, size_t cap, const char *name)
{
#ifdef _WIN32
    wchar_t tmp[MAX_PATH];
    char *t;
    if (!GetTempPathW(MAX_PATH, tmp) || !(t = wstr_to_utf8(tmp)))
        return -1;
    snprintf(out, cap, "%s%s-%lu", t, name, (unsigned long)GetCurrentProcessId());
    free(t);
    return file_mkdirs(out);
#else
    snprintf(out, cap, "/tmp/%s-XXXXXX", name);
    return mkdtemp(out) ? 0 : -1;
#endif
}

/* Removes directory `dir` and all it holds; 0 on success. */
static inline int tmp_remove_tree(const char *dir)
{
    char **names = file_list(dir, "", NULL);
    int rc;
    for (size_t i = 0; names && names[i]; i++) {
        char p[4200];
        if (snprintf(p, sizeof p, "%s/%s", dir, names[i]) < (int)sizeof p && file_remove(p) != 0)
            tmp_remove_tree(p);
    }
    file_list_free(names);
#ifdef _WIN32
    wchar_t *w = wstr_from_utf8(dir);
    rc = w && RemoveDirectoryW(w) ? 0 : -1;
    free(w);
#else
    rc = rmdir(dir);
#endif
    return rc;
}

/* Sets environment variable `name` to UTF-8 `value` (on Windows in the
 * wide environment, which the agent reads); 0 on success. */
static inline int tmp_setenv(const char *name, const char *value)
{
#ifdef _WIN32
    wchar_t *n = wstr_from_utf8(name), *v = wstr_from_utf8(value);
    int rc = n && v ? _wputenv_s(n, v) : -1;
    free(n);
    free(v);
    return rc;
#else
    return setenv(name, value, 1);
#endif
}

#endif
