/* The platform-neutral part of util/file.h; see file_int.h. */
#include "util/file.h"
#include "util/file_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

char *file_read_stream(FILE *f, size_t max, size_t *len)
{
    char *buf = NULL;
    size_t used = 0, cap = 0;
    for (;;) {
        size_t got;
        if (used + 4096 + 1 > cap) {
            char *grown;
            cap = cap ? cap * 2 : 8192;
            if (cap > max + 4096 + 1)
                cap = max + 4096 + 1;
            if (!(grown = realloc(buf, cap))) {
                free(buf);
                errno = ENOMEM;
                return NULL;
            }
            buf = grown;
        }
        got = fread(buf + used, 1, 4096, f);
        used += got;
        if (used > max) {
            free(buf);
            errno = EFBIG;
            return NULL;
        }
        if (got < 4096)
            break;
    }
    if (ferror(f)) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[used] = '\0';
    if (len)
        *len = used;
    return buf;
}

char *file_read_closing(FILE *f, size_t max, size_t *len)
{
    char *buf;
    int saved;
    if (!f)
        return NULL;
    buf = file_read_stream(f, max, len);
    saved = errno;
    fclose(f);
    errno = saved;
    return buf;
}

void file_list_free(char **names)
{
    for (size_t i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}

int file_names_add(struct file_names *l, const char *name, const char *suffix)
{
    size_t n = strlen(name), sn = strlen(suffix);
    if (name[0] == '.' || n <= sn || strcmp(name + n - sn, suffix) != 0)
        return 0;
    if (l->n + 2 > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **grown = realloc(l->names, cap * sizeof *grown);
        if (!grown)
            goto nomem;
        l->names = grown;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(name)))
        goto nomem;
    l->names[++l->n] = NULL;
    return 0;
nomem:
    file_list_free(l->names);
    memset(l, 0, sizeof *l);
    errno = ENOMEM;
    return -1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **file_names_finish(struct file_names *l, size_t *count)
{
    if (!l->names && !(l->names = calloc(1, sizeof *l->names))) {
        errno = ENOMEM;
        return NULL;
    }
    qsort(l->names, l->n, sizeof *l->names, by_name);
    if (count)
        *count = l->n;
    return l->names;
}
