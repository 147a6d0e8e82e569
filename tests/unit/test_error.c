/* The error table: every code unique, UPPER_SNAKE, bilingual, and in docs/API.md. */
#include "check.h"

#include "util/error.h"
#include "util/file.h"

#include <stdlib.h>

static int upper_snake(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || *s == '_' || (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

int main(void)
{
    const char *src = getenv("UKEY_SOURCE_DIR");
    char path[4096], needle[128];
    char *doc;

    snprintf(path, sizeof path, "%s/docs/API.md", src ? src : ".");
    doc = file_read_all(path, 1024 * 1024, NULL);
    CHECK(doc != NULL);
    for (int e = 1; e < UKEY_ERR__COUNT; e++) {
        const char *code = err_code((ukey_err)e);
        CHECK(upper_snake(code));
        CHECK(err_http_status((ukey_err)e) >= 400 && err_http_status((ukey_err)e) < 600);
        CHECK(strlen(err_message_zh((ukey_err)e)) > 0 && strlen(err_message_en((ukey_err)e)) > 0);
        for (int f = 1; f < e; f++)
            CHECK(strcmp(code, err_code((ukey_err)f)) != 0);
        snprintf(needle, sizeof needle, "`%s`", code);
        if (doc && !strstr(doc, needle)) {
            fprintf(stderr, "docs/API.md does not document %s\n", code);
            CHECK(0);
        }
    }
    CHECK(err_http_status(UKEY_OK) == 200);
    free(doc);
    return check_done();
}
