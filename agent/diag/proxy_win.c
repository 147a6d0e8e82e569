/*
 * Proxy settings on Windows; see proxy.h (proxy.c: the environment). The
 * user's Internet Options as WinHTTP reads them: a fixed proxy or a PAC
 * script. Automatic detection (WPAD) alone is not reported: it is on by
 * default and finds a proxy only on networks that publish one, and that
 * takes a lookup on the network. Windows bypasses loopback on its own for
 * all three unless the bypass list says "<-loopback>", and so do the
 * browsers.
 */
#include "diag/proxy.h"
#include "util/wstr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <winhttp.h>

void diag_proxy_read(struct diag_proxy *out)
{
    WINHTTP_CURRENT_USER_IE_PROXY_CONFIG ie = {0};
    char *proxy = NULL, *bypass = NULL;
    memset(out, 0, sizeof *out);
    out->loopback_exempt = 1;
    out->fix_zh = "在“Internet 选项 → 连接 → 局域网设置 → 高级”的例外中删除 <-loopback>。";
    out->fix_en = "Remove <-loopback> from the exceptions in Internet Options → Connections → LAN settings → Advanced.";
    if (!WinHttpGetIEProxyConfigForCurrentUser(&ie))
        return;
    if (ie.lpszProxy && (proxy = wstr_to_utf8(ie.lpszProxy)) != NULL)
        snprintf(out->proxy, sizeof out->proxy, "WinHTTP: %s", proxy);
    else if (ie.lpszAutoConfigUrl && (proxy = wstr_to_utf8(ie.lpszAutoConfigUrl)) != NULL)
        snprintf(out->proxy, sizeof out->proxy, "PAC: %s", proxy);
    if (ie.lpszProxyBypass && (bypass = wstr_to_utf8(ie.lpszProxyBypass)) != NULL) {
        snprintf(out->exceptions, sizeof out->exceptions, "%s", bypass);
        out->loopback_exempt = strstr(bypass, "<-loopback>") == NULL;
    }
    free(proxy);
    free(bypass);
    GlobalFree(ie.lpszProxy);
    GlobalFree(ie.lpszProxyBypass);
    GlobalFree(ie.lpszAutoConfigUrl);
}
