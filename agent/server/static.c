/* Static file lookup for the built-in pages; see static.h. */
#include "server/static.h"

#include "util/file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATIC_MAX_FILE (8u * 1024 * 1024)

const char *static_content_type(const char *name)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".ts", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* 1 if every segment of `path` is a plain name: no "", ".", "..", no
 * leading dot (hidden files), no backslash or control characters. */
static int path_acceptable(const char *path)
{
    if (path[0] != '/')
        return 0;
    for (const char *seg = path + 1;; ) {
        size_t n = strcspn(seg, "/");
        if (n == 0 || seg[0] == '.')
            return 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)seg[i] < 0x20 || seg[i] == '\\' || seg[i] == 0x7f)
                return 0;
        if (seg[n] == '\0')
            return 1;
        seg += n + 1;
    }
}

/* `path` under `dir` (util/file.h: no link may lead out of it). */
static int read_from_dir(const char *dir, const char *path, struct static_file *out)
{
    size_t len;
    char *data = file_read_within(dir, path, STATIC_MAX_FILE, &len);
    if (!data)
        return -1;
    out->owned = (unsigned char *)data;
    out->data = out->owned;
    out->len = len;
    return 0;
}

int static_lookup(const char *webroot_dir, const char *path, struct static_file *out)
{
    memset(out, 0, sizeof *out);
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    if (!path_acceptable(path))
        return -1;
    out->content_type = static_content_type(path);
    out->is_html = strncmp(out->content_type, "text/html", 9) == 0;
    if (webroot_dir)
        return read_from_dir(webroot_dir, path, out);
    for (const struct webroot_asset *a = webroot_assets; a->path; a++) {
        if (strcmp(a->path, path) == 0) {
            out->data = a->data;
            out->len = a->len;
            return 0;
        }
    }
    return -1;
}
