/* Default directories on Windows; see dirs.h (dirs.c is the POSIX twin). */
#include "util/dirs.h"
#include "util/wstr.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>
#include <windows.h>
#include <initguid.h> /* the FOLDERID_ GUIDs defined here: no libuuid */
#include <knownfolders.h>
#include <shlobj.h>

/* The variable's value as UTF-8 (a new string), NULL when unset or empty.
 * From the process's environment block: the C runtime's wide copy
 * (_wgetenv) is not made for a program that starts at main(). */
static char *env_utf8(const wchar_t *name)
{
    DWORD n = GetEnvironmentVariableW(name, NULL, 0);
    wchar_t *w = n > 1 ? malloc(n * sizeof *w) : NULL;
    char *v = NULL;
    if (w && GetEnvironmentVariableW(name, w, n) == n - 1)
        v = wstr_to_utf8(w);
    free(w);
    return v;
}

static char *known_folder(REFKNOWNFOLDERID id)
{
    wchar_t *w = NULL;
    char *path = NULL;
    if (SHGetKnownFolderPath(id, 0, NULL, &w) == S_OK)
        path = wstr_to_utf8(w);
    CoTaskMemFree(w);
    return path;
}

char *dirs_get(enum dirs_kind kind)
{
    static const struct {
        const wchar_t *var;
        REFKNOWNFOLDERID folder;
    } where[] = {
        [DIRS_USER_CONFIG] = {L"APPDATA", &FOLDERID_RoamingAppData},
        [DIRS_USER_STATE] = {L"LOCALAPPDATA", &FOLDERID_LocalAppData},
        [DIRS_SYSTEM_CONFIG] = {L"ProgramData", &FOLDERID_ProgramData},
    };
    char *base = env_utf8(where[kind].var), *path = NULL;
    if (!base)
        base = known_folder(where[kind].folder);
    if (base && asprintf(&path, "%s\\ukey-agent", base) < 0)
        path = NULL;
    free(base);
    return path;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char *certs_dir, *profiles_dir, *home_dir;

/* The directory of the running .exe as UTF-8, or NULL. */
static char *exe_dir(void)
{
    DWORD cap = MAX_PATH, n;
    wchar_t *w = NULL, *cut;
    char *dir = NULL;
    for (;;) {
        wchar_t *grown = realloc(w, cap * sizeof *w);
        if (!grown)
            goto out;
        w = grown;
        n = GetModuleFileNameW(NULL, w, cap);
        if (n == 0)
            goto out;
        if (n < cap)
            break;
        if (cap >= 32768)
            goto out;
        cap *= 2;
    }
    if ((cut = wcsrchr(w, L'\\')) != NULL) {
        *cut = L'\0';
        dir = wstr_to_utf8(w);
    }
out:
    free(w);
    return dir;
}

static void find_dirs(void)
{
    char *dir = exe_dir();
    if (dir) {
        if (asprintf(&certs_dir, "%s\\certs", dir) < 0)
            certs_dir = NULL;
        if (asprintf(&profiles_dir, "%s\\profiles", dir) < 0)
            profiles_dir = NULL;
    }
    free(dir);
    if (!(home_dir = env_utf8(L"USERPROFILE")))
        home_dir = known_folder(&FOLDERID_Profile);
}

/* Without the directory of the .exe (out of memory at start), a name that
 * exists nowhere: the anchors and profiles are then missing, as reported. */
const char *dirs_certs(void)
{
    pthread_once(&once, find_dirs);
    return certs_dir ? certs_dir : "<ukey-agent.exe>\\certs";
}

const char *dirs_profiles(void)
{
    pthread_once(&once, find_dirs);
    return profiles_dir ? profiles_dir : "<ukey-agent.exe>\\profiles";
}

const char *dirs_home(void)
{
    pthread_once(&once, find_dirs);
    return home_dir;
}
