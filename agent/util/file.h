/*
 * File helpers shared by every module that touches the disk. Paths are UTF-8
 * on every platform: file.c uses the POSIX calls, file_win.c the wide-char
 * Windows API (a path never goes through the ANSI code page, which turns a
 * Chinese user or directory name into mojibake on a Chinese Windows).
 */
#ifndef UKEY_UTIL_FILE_H
#define UKEY_UTIL_FILE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/*
 * Reads all of `path` (at most `max` bytes) into a new NUL-terminated buffer
 * the caller frees; *len (if not NULL) gets the size without the NUL.
 * Returns NULL with errno set (EFBIG when the file is larger than `max`).
 */
char *file_read_all(const char *path, size_t max, size_t *len);

/* The same for an open stream `f` (left open), from where it stands. */
char *file_read_stream(FILE *f, size_t max, size_t *len);

/*
 * Reads `rel` (starting with '/') under directory `root` like
 * file_read_all, but only a regular file that is inside `root` once every
 * link is resolved (a link inside must not lead out). NULL with errno.
 */
char *file_read_within(const char *root, const char *rel, size_t max, size_t *len);

/*
 * Writes `len` bytes of `data` to `path` through a temporary file in the
 * same directory (created with `mode`, never through a link), flushed to
 * the disk and renamed over `path`, so a reader sees the old file or the
 * new one, never half of one. On Windows a `mode` without group and other
 * bits gives the file an ACL of its owner (and SYSTEM) only. Returns 0,
 * or -1 with errno set (the temporary file removed).
 */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Creates directory `path` and any missing parent, each new one for the
 * user only (0700; on Windows an ACL of the owner and SYSTEM). An existing
 * directory is fine. Returns 0, or -1 with errno set.
 */
int file_mkdirs(const char *path);

/* 1 if something exists at `path`, else 0. */
int file_exists(const char *path);

/* Removes the file `path`: 0, or -1 with errno set. */
int file_remove(const char *path);

/*
 * The names in directory `dir` that end in `suffix` ("" for any) and are
 * longer than it, without hidden ones (a leading '.'), in byte order: a new
 * NULL-terminated array for file_list_free, *count (if not NULL) its
 * length. NULL with errno set (ENOENT or ENOTDIR when there is no such
 * directory).
 */
char **file_list(const char *dir, const char *suffix, size_t *count);
void file_list_free(char **names);

#endif
