/* Small file helpers shared by the modules that read files. */
#ifndef UKEY_UTIL_FILE_H
#define UKEY_UTIL_FILE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Reads all of `path` (at most `max` bytes) into a new NUL-terminated buffer
 * the caller frees; *len (if not NULL) gets the size without the NUL.
 * Returns NULL with errno set (EFBIG when the file is larger than `max`).
 */
char *file_read_all(const char *path, size_t max, size_t *len);

/*
 * Writes `len` bytes of `data` to `path` through a temporary file in the
 * same directory (created with `mode`, O_NOFOLLOW), fsync and rename(), so
 * a reader sees the old file or the new one, never half of one. Returns 0,
 * or -1 with errno set (the temporary file removed).
 */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

#endif
