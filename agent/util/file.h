/* Small file helpers shared by the modules that read files. */
#ifndef UKEY_UTIL_FILE_H
#define UKEY_UTIL_FILE_H

#include <stddef.h>

/*
 * Reads all of `path` (at most `max` bytes) into a new NUL-terminated buffer
 * the caller frees; *len (if not NULL) gets the size without the NUL.
 * Returns NULL with errno set (EFBIG when the file is larger than `max`).
 */
char *file_read_all(const char *path, size_t max, size_t *len);

#endif
