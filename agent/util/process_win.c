/* The process on Windows; see process.h (process.c is the POSIX twin). */
#include "util/process.h"
#include "util/dirs.h"
#include "util/file.h"
#include "util/wstr.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <windows.h>
#include <shellapi.h>

/* A process without a standard error (ukey-agentw.exe started at log-on
 * or by the installer, which are Windows-subsystem programs) logs to
 * agent.log in the user's state directory, begun anew at each start: the
 * help desk's "what did the agent say". */
static void log_without_console(void)
{
    HANDLE h = GetStdHandle(STD_ERROR_HANDLE);
    char *dir, path[4096];
    wchar_t *w;

    if (h != NULL && h != INVALID_HANDLE_VALUE)
        return;
    if (!(dir = dirs_get(DIRS_USER_STATE)))
        return;
    int n = snprintf(path, sizeof path, "%s\\agent.log", dir);
    if (n > 0 && (size_t)n < sizeof path && file_mkdirs(dir) == 0 && (w = wstr_from_utf8(path)) != NULL) {
        if (_wfreopen(w, L"w", stderr))
            setvbuf(stderr, NULL, _IONBF, 0);
        free(w);
    }
    free(dir);
}

void process_init(int *argc, char ***argv)
{
    int n = 0;
    wchar_t **wargv = CommandLineToArgvW(GetCommandLineW(), &n);
    char **args = wargv ? calloc((size_t)n + 1, sizeof *args) : NULL;
    static const DWORD streams[] = {STD_OUTPUT_HANDLE, STD_ERROR_HANDLE};
    DWORD mode;

    SetConsoleOutputCP(CP_UTF8);
    SetConsoleCP(CP_UTF8);
    /* Colour escapes (doctor's report) on a Windows 10 console. */
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        HANDLE h = GetStdHandle(streams[i]);
        if (h != INVALID_HANDLE_VALUE && GetConsoleMode(h, &mode))
            SetConsoleMode(h, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING);
    }
    if (args) {
        int i;
        for (i = 0; i < n && (args[i] = wstr_to_utf8(wargv[i])) != NULL; i++)
            ;
        if (i == n) {
            *argc = n;
            *argv = args; /* for the life of the process */
        } else {
            while (i-- > 0)
                free(args[i]);
            free(args);
        }
    }
    LocalFree(wargv);
    log_without_console();
}

int process_is_admin(void)
{
    HANDLE token;
    TOKEN_ELEVATION elevation = {0};
    DWORD got = 0;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
        return 0;
    if (!GetTokenInformation(token, TokenElevation, &elevation, sizeof elevation, &got))
        elevation.TokenIsElevated = 0;
    CloseHandle(token);
    return elevation.TokenIsElevated != 0;
}

int process_lang_zh(void)
{
    return PRIMARYLANGID(GetUserDefaultUILanguage()) == LANG_CHINESE;
}

/* A crash ends the process at once, before Windows Error Reporting (the
 * default filter) can write a report with a memory dump. */
static LONG WINAPI end_at_once(EXCEPTION_POINTERS *e)
{
    TerminateProcess(GetCurrentProcess(), e->ExceptionRecord->ExceptionCode);
    return EXCEPTION_EXECUTE_HANDLER;
}

void process_no_dumps(void)
{
    /* No "stopped working" dialog either, which would hold the process (and
     * its memory) until clicked. */
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX);
    SetUnhandledExceptionFilter(end_at_once);
}

size_t process_block_size(void *p)
{
    return _msize(p);
}
