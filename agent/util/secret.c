/* Secret handling helpers; see secret.h. */
#include "util/secret.h"

#include <mbedtls/platform_util.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

void secret_wipe(void *p, size_t n)
{
    if (p && n)
        mbedtls_platform_zeroize(p, n);
}

void secret_free_str(char *s)
{
    if (!s)
        return;
    secret_wipe(s, strlen(s));
    free(s);
}

void secret_harden_process(void)
{
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
