/* File helpers on POSIX; see file.h (file_win.c is the Windows twin). */
#include "util/file.h"
#include "util/file_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *file_read_all(const char *path, size_t max, size_t *len)
{
    return file_read_closing(fopen(path, "rb"), max, len);
}

char *file_read_within(const char *root, const char *rel, size_t max, size_t *len)
{
    char top[PATH_MAX], full[PATH_MAX], real[PATH_MAX];
    struct stat st;
    size_t toplen;
    FILE *f;
    int fd, n, saved;

    if (!realpath(root, top))
        return NULL;
    n = snprintf(full, sizeof full, "%s%s", top, rel);
    if (n < 0 || (size_t)n >= sizeof full) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    if (!realpath(full, real))
        return NULL;
    toplen = strlen(top);
    /* A symlink inside the root must not lead outside it. */
    if (strncmp(real, top, toplen) != 0 || real[toplen] != '/') {
        errno = EACCES;
        return NULL;
    }
    if ((fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return NULL;
    saved = fstat(fd, &st) != 0 ? errno : !S_ISREG(st.st_mode) ? EISDIR : (size_t)st.st_size > max ? EFBIG : 0;
    if (saved) {
        close(fd);
        errno = saved;
        return NULL;
    }
    if (!(f = fdopen(fd, "rb")))
        close(fd);
    return file_read_closing(f, max, len);
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

int file_mkdirs(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) {
        errno = len ? ENAMETOOLONG : ENOENT;
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

int file_remove(const char *path)
{
    return unlink(path);
}

char **file_list(const char *dir, const char *suffix, size_t *count)
{
    struct file_names l = {0};
    struct dirent *e;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    while ((e = readdir(d)) != NULL)
        if (file_names_add(&l, e->d_name, suffix) != 0) {
            closedir(d);
            return NULL;
        }
    closedir(d);
    return file_names_finish(&l, count);
}
