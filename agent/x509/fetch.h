/*
 * Bounded HTTP(S) fetches of CRLs, OCSP answers and issuer certificates,
 * shared by the agent's diagnostics and libukeyverify.
 */
#ifndef UKEY_X509_FETCH_H
#define UKEY_X509_FETCH_H

#include <stddef.h>
#include <time.h>

#define X509_FETCH_MAX (8u * 1024 * 1024)

#define X509_FETCH_TIMEOUT_S 15L

struct x509_fetch_req {
    const char *url;
    const unsigned char *post;  /* a POST body, or NULL for a GET */
    size_t post_len;
    const char *content_type;   /* the whole header line for a POST */
    long timeout_s;             /* 0: X509_FETCH_TIMEOUT_S */
};

struct x509_fetch_res {
    unsigned char *body;        /* malloc'd, NUL-terminated */
    size_t len;
    long http_code;
    time_t date;                /* the server's Date header, 0 if none */
};

/*
 * GETs or POSTs `req->url` (http/https only, at most X509_FETCH_MAX bytes,
 * at most 5 s to connect and timeout_s in all, 3 redirects, proxies from
 * the environment but never for loopback). Returns 0 with `res` filled (any
 * HTTP status), or -1 with a reason in `err` (unreachable, timed out, too
 * large).
 */
int x509_fetch(const struct x509_fetch_req *req, struct x509_fetch_res *res, char *err, size_t errlen);

#endif
