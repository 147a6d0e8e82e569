/* Default directories on Linux and other POSIX systems; see dirs.h. */
#include "util/dirs.h"

#include <stdio.h>
#include <stdlib.h>

char *dirs_get(enum dirs_kind kind)
{
    static const struct {
        const char *var, *under_home;
    } user[] = {
        [DIRS_USER_CONFIG] = {"XDG_CONFIG_HOME", ".config"},
        [DIRS_USER_STATE] = {"XDG_DATA_HOME", ".local/share"},
    };
    const char *xdg, *home = dirs_home();
    char *path = NULL;
    int n;
    if (kind == DIRS_SYSTEM_CONFIG)
        n = asprintf(&path, "/etc/ukey-agent");
    else if ((xdg = getenv(user[kind].var)) && *xdg)
        n = asprintf(&path, "%s/ukey-agent", xdg);
    else if (home)
        n = asprintf(&path, "%s/%s/ukey-agent", home, user[kind].under_home);
    else
        return NULL;
    return n < 0 ? NULL : path;
}

const char *dirs_certs(void)
{
    return UKEY_CERTS_DIR;
}

const char *dirs_profiles(void)
{
    return UKEY_PROFILES_DIR;
}

const char *dirs_home(void)
{
    const char *home = getenv("HOME");
    return home && *home ? home : NULL;
}
