/*
 * What file.c and file_win.c share (file_common.c): the reading of a stream
 * and the making of file_list()'s answer. Not for other modules.
 */
#ifndef UKEY_UTIL_FILE_INT_H
#define UKEY_UTIL_FILE_INT_H

#include <stddef.h>
#include <stdio.h>

/* file_read_stream of `f`, which is then closed (errno kept); NULL (errno
 * kept) when `f` is NULL: the opening call's failure. */
char *file_read_closing(FILE *f, size_t max, size_t *len);

/* file_list()'s answer while a directory is read. */
struct file_names {
    char **names;
    size_t n, cap;
};

/* Adds `name` when it is not hidden and ends in `suffix` (and is longer);
 * 0, or -1 with errno ENOMEM (the list freed). */
int file_names_add(struct file_names *l, const char *name, const char *suffix);

/* The list sorted and NULL-terminated (see file_list), or NULL with ENOMEM. */
char **file_names_finish(struct file_names *l, size_t *count);

#endif
