/* Reading a libmicrohttpd request for the guard; see request.h. */
#include "server/request.h"

#include <string.h>

/* The header lines as libmicrohttpd hands them on, one behind. */
struct header_scan {
    struct guard_request *g;
    const char *name, *value;   /* the previous line, not yet added */
    size_t value_len;
};

/*
 * libmicrohttpd 0.9.75 splits header lines in place in its read buffer (the
 * CR and LF of each line end become NULs) and measures each value with
 * strlen(), so a NUL inside a value cuts it, and the lengths it reports
 * (MHD_get_connection_values_n) cannot show it. Where the next line starts
 * does: right behind the NUL that ended the value (a bare LF), or one NUL
 * later (CR LF). After the last line comes the empty line, so the byte
 * behind its end is a NUL too. Anything else means the value went on
 * behind a NUL, and the length given to the guard then covers that NUL.
 * (A NUL right before a line end looks like a CR, and cuts nothing.)
 * `next` is the name of the next header line, NULL after the last.
 */
static void scan_flush(struct header_scan *s, const char *next)
{
    const char *end = s->value ? s->value + s->value_len : NULL;
    int whole = !end || (next ? next == end + 1 || (next == end + 2 && end[1] == '\0') : end[1] == '\0');
    guard_add_header(s->g, s->name, s->value ? s->value : "", s->value_len + (whole ? 0 : 1));
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    struct header_scan *s = cls;
    (void)kind;
    (void)key_size;
    if (s->name)
        scan_flush(s, key);
    s->name = key;
    s->value = value;
    s->value_len = value ? value_size : 0;
    return MHD_YES;
}

void request_guard_read(struct MHD_Connection *c, struct guard_request *g)
{
    struct header_scan s = {g, NULL, NULL, 0};
    memset(g, 0, sizeof *g);
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, scan_header, &s);
    if (s.name)
        scan_flush(&s, NULL);
}

int request_query_cut(const char *uri)
{
    /* strchr() hands back a writable pointer: `uri` lies in libmicrohttpd's
     * read buffer, whose query part it is about to split in place itself. */
    char *query = uri ? strchr(uri, '?') : NULL;
    unsigned args = 1;
    if (!query || query[1] == '\0')
        return 0;
    for (const char *p = query + 1; *p; p++)
        args += *p == '&';
    if (args <= REQUEST_MAX_QUERY_ARGS)
        return 0;
    query[1] = '\0';
    return 1;
}
