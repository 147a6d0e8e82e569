/* The process on Linux and other POSIX systems; see process.h. */
#include "util/process.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

void process_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
}

int process_is_admin(void)
{
    return geteuid() == 0;
}

int process_lang_zh(void)
{
    const char *lang = getenv("LC_ALL") && *getenv("LC_ALL") ? getenv("LC_ALL") : getenv("LANG");
    return lang && strncmp(lang, "zh", 2) == 0;
}

void process_no_dumps(void)
{
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

size_t process_block_size(void *p)
{
    return malloc_usable_size(p);
}
