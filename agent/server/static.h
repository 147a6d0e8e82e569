/*
 * Static files of the diagnostic page and the SDK: built into the binary
 * from webroot/ at build time (cmake/EmbedWebroot.cmake), or read from a
 * directory given with --webroot. Lookups never leave the web root.
 */
#ifndef UKEY_SERVER_STATIC_H
#define UKEY_SERVER_STATIC_H

#include <stddef.h>

struct webroot_asset {
    const char *path;             /* "/index.html" */
    const unsigned char *data;
    size_t len;
};

/* The generated table, terminated by a {NULL, NULL, 0} row. */
extern const struct webroot_asset webroot_assets[];

struct static_file {
    const unsigned char *data;    /* embedded bytes, or `owned` */
    size_t len;
    unsigned char *owned;         /* malloc'd when read from disk; free it */
    const char *content_type;
    int is_html;
};

/*
 * Looks up URL path `path` ("/" means "/index.html") in `webroot_dir`, or in
 * the embedded assets when `webroot_dir` is NULL. Returns 0 and fills `out`,
 * or -1 when there is no such file or the path is not acceptable (".."
 * segments, hidden files, backslashes, NUL, symlinks leaving the root).
 */
int static_lookup(const char *webroot_dir, const char *path, struct static_file *out);

/* Content type for a file name by its extension. */
const char *static_content_type(const char *name);

#endif
