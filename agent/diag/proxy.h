/*
 * The proxy settings behind the network.proxy check: a proxy that does not
 * exempt loopback catches the browser's calls to the agent (and the
 * agent's own CRL and OCSP fetches go through it). On Linux they are the
 * environment's (proxy.c: https_proxy, NO_PROXY ...), on Windows the
 * user's Internet Options as WinHTTP reads them (proxy_win.c), which the
 * browsers and the agent's fetches (x509/fetch_win.c) follow.
 */
#ifndef UKEY_DIAG_PROXY_H
#define UKEY_DIAG_PROXY_H

struct diag_proxy {
    char proxy[256];         /* where a proxy is set: "https_proxy", "WinHTTP: host:port"; "" for none */
    char exceptions[512];    /* the exceptions as set (NO_PROXY, the bypass list); "" for none */
    int loopback_exempt;     /* 1 when loopback (127.0.0.1, localhost) bypasses the proxy */
    const char *fix_zh, *fix_en; /* how to exempt loopback here */
};

void diag_proxy_read(struct diag_proxy *out);

#endif
