/* Proxy settings from the environment; see proxy.h (proxy_win.c: Windows). */
#include "diag/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void diag_proxy_read(struct diag_proxy *out)
{
    static const char *const vars[] = {"https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    const char *no_proxy = getenv("no_proxy") ? getenv("no_proxy") : getenv("NO_PROXY");
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0] && !out->proxy[0]; i++)
        if (getenv(vars[i]) && *getenv(vars[i]))
            snprintf(out->proxy, sizeof out->proxy, "%s", vars[i]);
    snprintf(out->exceptions, sizeof out->exceptions, "%s", no_proxy ? no_proxy : "");
    out->loopback_exempt = no_proxy && (strstr(no_proxy, "127.0.0.1") || strstr(no_proxy, "localhost") ||
                                        strcmp(no_proxy, "*") == 0);
    out->fix_zh = "在代理的例外列表（NO_PROXY）中加入 127.0.0.1 和 localhost。";
    out->fix_en = "Add 127.0.0.1 and localhost to the proxy exceptions (NO_PROXY).";
}
