/* Stop requests on Windows; see stop.h.
 *
 * A thread of ours owns the named stop event and a hidden top-level window
 * (never shown): the system sends WM_QUERYENDSESSION / WM_ENDSESSION to
 * top-level windows only (a message-only window gets no broadcasts), and a
 * console program that loads user32 gets no CTRL_LOGOFF_EVENT or
 * CTRL_SHUTDOWN_EVENT, only those messages. The console handler runs in a
 * thread the system makes for it.
 *
 * At log-off or shut-down, and when the console is closed, the process is
 * ended as soon as the handler returns; the handler therefore waits (at most
 * END_WAIT_MS) until serve has shut down (stop_watch_end).
 */
#include "server/stop.h"

#include "util/log.h"
#include "util/net.h"

#include <stdio.h>
#include <wchar.h>
#include <windows.h>

#define END_WAIT_MS 4500  /* the system ends a console process 5 s after CTRL_CLOSE_EVENT */
#define STOP_WAIT_MS 10000 /* `ukey-agent stop` waits this long for the agent to end */

static volatile int *stop_flag;
static net_socket wake_pair[2] = {NET_INVALID, NET_INVALID};
static HANDLE named_stop, quit, done, watcher;
static const wchar_t window_class[] = L"ukey-agent-stop";

static void request_stop(const char *why)
{
    if (!*stop_flag)
        log_info("stop requested: %s", why);
    *stop_flag = 1;
    net_send(wake_pair[1], "x", 1);
}

static BOOL WINAPI on_console(DWORD event)
{
    switch (event) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
        request_stop("console interrupt");
        return TRUE;
    case CTRL_CLOSE_EVENT:
    case CTRL_LOGOFF_EVENT:
    case CTRL_SHUTDOWN_EVENT:
        request_stop(event == CTRL_CLOSE_EVENT ? "console closed" : "session ending");
        WaitForSingleObject(done, END_WAIT_MS);
        return TRUE;
    default:
        return FALSE;
    }
}

static LRESULT CALLBACK on_message(HWND w, UINT msg, WPARAM wp, LPARAM lp)
{
    if (msg == WM_QUERYENDSESSION)
        return TRUE; /* nothing to save: the session may end */
    if (msg == WM_ENDSESSION) {
        if (wp) {
            request_stop("session ending");
            WaitForSingleObject(done, END_WAIT_MS);
        }
        return 0;
    }
    return DefWindowProcW(w, msg, wp, lp);
}

/* Owns the window; wakes for its messages, the named event and `quit`. */
static DWORD WINAPI watch(void *unused)
{
    HINSTANCE self = GetModuleHandleW(NULL);
    WNDCLASSW wc = {.lpfnWndProc = on_message, .hInstance = self, .lpszClassName = window_class};
    HWND w = NULL;
    (void)unused;

    /* Without a desktop (a service, or Wine with no display) there is no
     * window and so no session messages; the console and the event remain. */
    if (RegisterClassW(&wc))
        w = CreateWindowExW(0, window_class, L"ukey-agent", WS_POPUP, 0, 0, 0, 0, NULL, NULL, self, NULL);
    if (!w)
        log_debug("no window for the session's end: error %lu", GetLastError());
    for (;;) {
        HANDLE h[2] = {quit, named_stop};
        DWORD n = named_stop ? 2 : 1, r = MsgWaitForMultipleObjects(n, h, FALSE, INFINITE, QS_ALLINPUT);
        MSG m;
        if (r == WAIT_OBJECT_0 || r == WAIT_FAILED)
            break;
        if (r == WAIT_OBJECT_0 + 1 && n == 2) {
            request_stop("stop event set");
            ResetEvent(named_stop);
        }
        while (PeekMessageW(&m, NULL, 0, 0, PM_REMOVE))
            DispatchMessageW(&m);
    }
    if (w)
        DestroyWindow(w);
    UnregisterClassW(window_class, self);
    return 0;
}

/* "Local\ukey-agent-stop-<user name>": per session (Local\) and per
 * user. Returns 0, or -1 (GetLastError). */
static int stop_event_name(wchar_t *name, size_t len)
{
    wchar_t user[257];
    DWORD n = sizeof user / sizeof user[0];
    if (!GetUserNameW(user, &n))
        return -1;
    swprintf(name, len, L"Local\\ukey-agent-stop-%ls", user);
    return 0;
}

static HANDLE open_named_stop(void)
{
    wchar_t name[300];
    HANDLE h;
    if (stop_event_name(name, sizeof name / sizeof name[0]) != 0)
        return NULL;
    /* Manual reset; a default security descriptor: our user, SYSTEM and
     * the administrators may set it. */
    h = CreateEventW(NULL, TRUE, FALSE, name);
    if (h && GetLastError() == ERROR_ALREADY_EXISTS)
        log_warn("the stop event of this user already exists (another agent is stopping?); it stops this one too");
    return h;
}

int stop_watch_start(volatile int *flag, net_socket *wake, char *err, size_t errlen)
{
    char why[200];

    if (net_pair(wake_pair) != 0) {
        snprintf(err, errlen, "socket pair: %s", net_strerror(why, sizeof why));
        return -1;
    }
    stop_flag = flag;
    if (!(quit = CreateEventW(NULL, TRUE, FALSE, NULL)) || !(done = CreateEventW(NULL, TRUE, FALSE, NULL))) {
        snprintf(err, errlen, "CreateEvent: error %lu", GetLastError());
        stop_watch_end();
        return -1;
    }
    if (!(named_stop = open_named_stop()))
        log_warn("no stop event: error %lu", GetLastError());
    if (!(watcher = CreateThread(NULL, 0, watch, NULL, 0, NULL))) {
        snprintf(err, errlen, "CreateThread: error %lu", GetLastError());
        stop_watch_end();
        return -1;
    }
    SetConsoleCtrlHandler(on_console, TRUE);
    *wake = wake_pair[0];
    return 0;
}

void stop_watch_end(void)
{
    SetConsoleCtrlHandler(on_console, FALSE);
    if (done)
        SetEvent(done);
    if (watcher) {
        SetEvent(quit);
        WaitForSingleObject(watcher, INFINITE);
        CloseHandle(watcher);
    }
    if (named_stop)
        CloseHandle(named_stop);
    if (quit)
        CloseHandle(quit);
    if (done)
        CloseHandle(done);
    named_stop = quit = done = watcher = NULL;
    net_close(wake_pair[0]);
    net_close(wake_pair[1]);
    wake_pair[0] = wake_pair[1] = NET_INVALID;
}

int stop_request_running(char *err, size_t errlen)
{
    wchar_t name[300];
    HANDLE h;

    if (stop_event_name(name, sizeof name / sizeof name[0]) != 0) {
        snprintf(err, errlen, "cannot name the stop event: error %lu", GetLastError());
        return -1;
    }
    if (!(h = OpenEventW(EVENT_MODIFY_STATE, FALSE, name))) {
        snprintf(err, errlen, "no agent of this user is running in this session (error %lu)", GetLastError());
        return -1;
    }
    SetEvent(h);
    CloseHandle(h);
    /* The event is gone once the agent has closed it, at the end of serve. */
    for (int i = 0; i < STOP_WAIT_MS / 100; i++) {
        Sleep(100);
        if (!(h = OpenEventW(SYNCHRONIZE, FALSE, name)))
            return 0;
        CloseHandle(h);
    }
    snprintf(err, errlen, "the agent was asked to stop but is still running after %d s", STOP_WAIT_MS / 1000);
    return -1;
}
