/* File helpers; see file.h. */
#include "util/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

char *file_read_all(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t used = 0, cap = 0;
    if (!f)
        return NULL;
    for (;;) {
        size_t got;
        if (used + 4096 + 1 > cap) {
            char *grown;
            cap = cap ? cap * 2 : 8192;
            if (cap > max + 4096 + 1)
                cap = max + 4096 + 1;
            if (!(grown = realloc(buf, cap))) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = grown;
        }
        got = fread(buf + used, 1, 4096, f);
        used += got;
        if (used > max) {
            free(buf);
            fclose(f);
            errno = EFBIG;
            return NULL;
        }
        if (got < 4096)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        errno = EIO;
        return NULL;
    }
    fclose(f);
    buf[used] = '\0';
    if (len)
        *len = used;
    return buf;
}
