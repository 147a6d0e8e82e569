/*
 * File helpers on Windows; see file.h (file.c is the POSIX twin). Every
 * path is converted from UTF-8 to UTF-16 here and handed to the wide-char
 * API: CreateFileW, FlushFileBuffers, MoveFileExW, CreateDirectoryW,
 * FindFirstFileExW. Files are read with every sharing mode, so a reader
 * stops nobody but a replace of that file while it is open (which Windows
 * refuses; file_write_atomic tries again for a moment).
 */
#include "util/file.h"
#include "util/file_int.h"
#include "util/wstr.h"

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <sddl.h>

#define SHARE_ALL (FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)

/* errno for the thread's last Windows error. */
static int last_errno(void)
{
    switch (GetLastError()) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE:
    case ERROR_BAD_NETPATH:
        return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
        return EACCES;
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS:
        return EEXIST;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
        return ENOSPC;
    case ERROR_FILENAME_EXCED_RANGE:
        return ENAMETOOLONG;
    case ERROR_INVALID_NAME:
        return EINVAL;
    case ERROR_DIRECTORY:
        return ENOTDIR;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return ENOMEM;
    default:
        return EIO;
    }
}

/* Fails with the last Windows error as errno; returns `value`. */
#define FAIL_WITH_LAST(value) (errno = last_errno(), (value))

/*
 * The security descriptor of a file or directory for the user only: the
 * user's own SID and SYSTEM with full access, nothing inherited (POSIX
 * 0700/0600). The SID is the token's user rather than the owner, so that an
 * elevated run (whose files an administrator group owns) leaves files the
 * same user can use unelevated. NULL (inherit the parent's ACL) if any step
 * fails; LocalFree the result.
 */
static PSECURITY_DESCRIPTOR private_descriptor(int inherit)
{
    HANDLE token = NULL;
    union {
        TOKEN_USER user;
        BYTE raw[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } info;
    DWORD got = 0;
    LPWSTR sid = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    wchar_t sddl[256];

    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
        return NULL;
    if (GetTokenInformation(token, TokenUser, &info, sizeof info, &got) &&
        ConvertSidToStringSidW(info.user.User.Sid, &sid)) {
        const wchar_t *flags = inherit ? L"OICI" : L"";
        if (_snwprintf(sddl, sizeof sddl / sizeof sddl[0], L"D:P(A;%ls;FA;;;%ls)(A;%ls;FA;;;SY)", flags, sid,
                       flags) > 0)
            ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL);
        LocalFree(sid);
    }
    CloseHandle(token);
    return sd;
}

/* Opens `path` for reading (any sharing), or INVALID_HANDLE_VALUE with errno. */
static HANDLE open_read(const char *path, DWORD flags)
{
    wchar_t *w = wstr_from_utf8(path);
    HANDLE h;
    if (!w)
        return INVALID_HANDLE_VALUE;
    h = CreateFileW(w, GENERIC_READ, SHARE_ALL, NULL, OPEN_EXISTING, flags, NULL);
    if (h == INVALID_HANDLE_VALUE)
        errno = last_errno();
    free(w);
    return h;
}

/* Reads all of handle `h` (consumed: closed in every case). */
static char *read_handle(HANDLE h, size_t max, size_t *len)
{
    int fd = _open_osfhandle((intptr_t)h, _O_RDONLY | _O_BINARY);
    FILE *f = NULL;
    if (fd < 0) {
        CloseHandle(h);
        errno = EMFILE;
    } else if (!(f = _fdopen(fd, "rb"))) {
        _close(fd);
        errno = ENOMEM;
    }
    return file_read_closing(f, max, len);
}

char *file_read_all(const char *path, size_t max, size_t *len)
{
    HANDLE h = open_read(path, FILE_ATTRIBUTE_NORMAL);
    return h == INVALID_HANDLE_VALUE ? NULL : read_handle(h, max, len);
}

/* The final path of an open handle (links resolved), a new UTF-16 string. */
static wchar_t *final_path(HANDLE h)
{
    DWORD n = GetFinalPathNameByHandleW(h, NULL, 0, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
    wchar_t *w = n ? malloc((n + 1) * sizeof *w) : NULL;
    if (!n)
        return FAIL_WITH_LAST(NULL);
    if (!w) {
        errno = ENOMEM;
        return NULL;
    }
    if (GetFinalPathNameByHandleW(h, w, n + 1, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS) - 1 >= n) {
        free(w);
        return FAIL_WITH_LAST(NULL);
    }
    return w;
}

char *file_read_within(const char *root, const char *rel, size_t max, size_t *len)
{
    HANDLE dir = open_read(root, FILE_FLAG_BACKUP_SEMANTICS), h = INVALID_HANDLE_VALUE;
    BY_HANDLE_FILE_INFORMATION info;
    wchar_t *top = NULL, *real = NULL;
    char *full = NULL;
    size_t toplen;
    int err = 0;

    if (dir == INVALID_HANDLE_VALUE)
        return NULL;
    if (!(top = final_path(dir)) || !(full = malloc(strlen(root) + strlen(rel) + 1))) {
        err = top ? ENOMEM : errno;
        goto out;
    }
    strcat(strcpy(full, root), rel);
    if ((h = open_read(full, FILE_ATTRIBUTE_NORMAL)) == INVALID_HANDLE_VALUE || !(real = final_path(h))) {
        err = errno;
        goto out;
    }
    /* A link inside the root must not lead outside it. */
    toplen = wcslen(top);
    if (wcsncmp(real, top, toplen) != 0 || real[toplen] != L'\\') {
        err = EACCES;
        goto out;
    }
    if (!GetFileInformationByHandle(h, &info))
        err = last_errno();
    else if (info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
        err = EISDIR;
    else if (info.nFileSizeHigh || info.nFileSizeLow > max)
        err = EFBIG;
out:
    CloseHandle(dir);
    free(top);
    free(real);
    free(full);
    if (err) {
        if (h != INVALID_HANDLE_VALUE)
            CloseHandle(h);
        errno = err;
        return NULL;
    }
    return read_handle(h, max, len);
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[4200];
    wchar_t *wtmp = NULL, *wpath = NULL;
    const char *p = data;
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, FALSE};
    HANDLE h = INVALID_HANDLE_VALUE;
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%lu", path, (unsigned long)GetCurrentProcessId()), err = 0;

    if (n < 0 || (size_t)n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (!(wtmp = wstr_from_utf8(tmp)) || !(wpath = wstr_from_utf8(path))) {
        err = errno;
        goto out;
    }
    if ((mode & 077) == 0)
        sa.lpSecurityDescriptor = private_descriptor(0);
    /* A leftover (or a planted link) goes first; CREATE_NEW never follows one. */
    DeleteFileW(wtmp);
    h = CreateFileW(wtmp, GENERIC_WRITE, 0, &sa, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        err = last_errno();
        goto out;
    }
    while (len > 0) {
        DWORD chunk = len > 1u << 30 ? 1u << 30 : (DWORD)len, wrote = 0;
        if (!WriteFile(h, p, chunk, &wrote, NULL) || wrote == 0) {
            err = last_errno();
            goto out;
        }
        p += wrote;
        len -= wrote;
    }
    if (!FlushFileBuffers(h)) {
        err = last_errno();
        goto out;
    }
    CloseHandle(h);
    h = INVALID_HANDLE_VALUE;
    /* Windows refuses to replace a file that is open, and a reader (a virus
     * scanner, an indexer, file_read_all in another thread) may hold the
     * old one for a moment: try again a few times, 50 ms apart. */
    for (int tries = 0; !MoveFileExW(wtmp, wpath, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH); tries++) {
        DWORD e = GetLastError();
        if (tries == 4 || (e != ERROR_ACCESS_DENIED && e != ERROR_SHARING_VIOLATION)) {
            err = last_errno();
            break;
        }
        Sleep(50);
    }
out:
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    if (err && wtmp)
        DeleteFileW(wtmp);
    LocalFree(sa.lpSecurityDescriptor);
    free(wtmp);
    free(wpath);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/* Where the first directory to create begins: after "C:\", "\\server\share\"
 * or a leading separator. */
static size_t root_length(const wchar_t *w)
{
    size_t i = 0;
    int seps = 0;
    if (w[0] && w[1] == L':')
        return w[2] == L'\\' || w[2] == L'/' ? 3 : 2;
    if ((w[0] == L'\\' || w[0] == L'/') && (w[1] == L'\\' || w[1] == L'/')) {
        for (i = 2; w[i] && seps < 2; i++)
            seps += w[i] == L'\\' || w[i] == L'/';
        return i;
    }
    return w[0] == L'\\' || w[0] == L'/' ? 1 : 0;
}

int file_mkdirs(const char *path)
{
    wchar_t *w = *path ? wstr_from_utf8(path) : NULL;
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, FALSE};
    int err = 0;
    if (!w) {
        errno = *path ? errno : ENOENT;
        return -1;
    }
    sa.lpSecurityDescriptor = private_descriptor(1);
    for (wchar_t *p = w + root_length(w);; p++) {
        wchar_t c = *p;
        if (c != L'\0' && c != L'\\' && c != L'/')
            continue;
        *p = L'\0';
        if (p > w && p[-1] != L'\\' && p[-1] != L'/' && !CreateDirectoryW(w, &sa) &&
            GetLastError() != ERROR_ALREADY_EXISTS) {
            err = last_errno();
            break;
        }
        if (!(*p = c))
            break;
    }
    LocalFree(sa.lpSecurityDescriptor);
    free(w);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

int file_exists(const char *path)
{
    wchar_t *w = wstr_from_utf8(path);
    int yes = w && GetFileAttributesW(w) != INVALID_FILE_ATTRIBUTES;
    free(w);
    return yes;
}

int file_remove(const char *path)
{
    wchar_t *w = wstr_from_utf8(path);
    int rc = w && DeleteFileW(w) ? 0 : -1;
    if (w && rc)
        errno = last_errno();
    free(w);
    return rc;
}

char **file_list(const char *dir, const char *suffix, size_t *count)
{
    struct file_names l = {0};
    WIN32_FIND_DATAW fd;
    HANDLE find;
    size_t n = strlen(dir);
    char *pattern = malloc(n + 3);
    wchar_t *w;
    if (!pattern) {
        errno = ENOMEM;
        return NULL;
    }
    strcpy(pattern, dir);
    strcpy(pattern + n, n && (dir[n - 1] == '/' || dir[n - 1] == '\\') ? "*" : "\\*");
    w = wstr_from_utf8(pattern);
    free(pattern);
    if (!w)
        return NULL;
    find = FindFirstFileExW(w, FindExInfoBasic, &fd, FindExSearchNameMatch, NULL, 0);
    free(w);
    if (find == INVALID_HANDLE_VALUE) {
        errno = GetLastError() == ERROR_DIRECTORY ? ENOTDIR : last_errno();
        return NULL;
    }
    do {
        char *name = wstr_to_utf8(fd.cFileName);
        int rc = name ? file_names_add(&l, name, suffix) : -1;
        free(name);
        if (rc != 0) {
            file_list_free(l.names);
            FindClose(find);
            errno = ENOMEM;
            return NULL;
        }
    } while (FindNextFileW(find, &fd));
    FindClose(find);
    return file_names_finish(&l, count);
}
