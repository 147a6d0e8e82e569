/* File helpers; see file.h. */
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

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

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[4200];
    const char *p = data;
    size_t off = 0;
    int fd, n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()), saved;
    if (n < 0 || (size_t)n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    if (fchmod(fd, mode) != 0)
        goto fail;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto fail;
    return 0;
fail:
    saved = errno ? errno : EIO;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}
