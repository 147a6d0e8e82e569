/* dynlib.h over dlopen. */
#include "util/dynlib.h"

#include <dlfcn.h>
#include <stdio.h>

struct dynlib *dynlib_open(const char *path, char *why, size_t why_len)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, why_len, "%s", e ? e : "unknown error");
    }
    return h;
}

void *dynlib_sym(struct dynlib *lib, const char *name) { return dlsym(lib, name); }
