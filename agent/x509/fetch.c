/* CRL distribution points and bounded fetches; see fetch.h. */
#include "x509/fetch.h"

#include <curl/curl.h>
#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int x509_crl_url(const mbedtls_x509_crt *crt, char *url, size_t cap)
{
    unsigned char *p = crt->v3_ext.p, *end, *ext_end;
    size_t len;
    if (!p) /* no extensions at all (found by fuzz_cert: no arithmetic on NULL) */
        return -1;
    end = p + crt->v3_ext.len;
    /* v3_ext starts at the Extensions SEQUENCE (inside the [3] wrapper). */
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return -1;
    while (p < end) {
        mbedtls_asn1_buf oid;
        int critical = 0;
        if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
            return -1;
        ext_end = p + len;
        oid.tag = MBEDTLS_ASN1_OID;
        if (mbedtls_asn1_get_tag(&p, ext_end, &oid.len, MBEDTLS_ASN1_OID) != 0)
            return -1;
        oid.p = p;
        p += oid.len;
        mbedtls_asn1_get_bool(&p, ext_end, &critical);
        if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0)
            return -1;
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_CRL_DISTRIBUTION_POINTS, &oid) == 0) {
            /* Find a [6] uniformResourceIdentifier anywhere inside. */
            for (unsigned char *q = p; q + 2 < ext_end; q++) {
                /* The URI must hold the whole scheme it is compared with
                 * (fuzz_cert found a 3-byte "htt" passing a longer compare). */
                size_t n = q[1];
                if (*q == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 6) && n < 0x80 && q + 2 + n <= ext_end && n + 1 < cap &&
                    ((n > 7 && memcmp(q + 2, "http://", 7) == 0) || (n > 8 && memcmp(q + 2, "https://", 8) == 0))) {
                    memcpy(url, q + 2, q[1]);
                    url[q[1]] = '\0';
                    return 0;
                }
            }
        }
        p = ext_end;
    }
    return -1;
}

struct grow {
    unsigned char *data;
    size_t len;
};

static size_t collect(char *ptr, size_t size, size_t n, void *arg)
{
    struct grow *g = arg;
    size_t add = size * n;
    unsigned char *bigger;
    if (g->len + add > X509_FETCH_MAX || !(bigger = realloc(g->data, g->len + add + 1)))
        return 0;
    g->data = bigger;
    memcpy(g->data + g->len, ptr, add);
    g->len += add;
    g->data[g->len] = '\0';
    return add;
}

/* Picks the Date header out of the response headers. */
static size_t header_date(char *line, size_t size, size_t n, void *arg)
{
    char value[128];
    size_t len = size * n;
    if (len > 5 && len < sizeof value + 5 && strncasecmp(line, "Date:", 5) == 0) {
        memcpy(value, line + 5, len - 5);
        value[len - 5] = '\0';
        *(time_t *)arg = curl_getdate(value, NULL);
    }
    return len;
}

int x509_fetch(const char *url, unsigned char **body, size_t *len, long *http_code, time_t *date, char *err,
               size_t errlen)
{
    CURL *curl = curl_easy_init();
    struct grow g = {NULL, 0};
    time_t server_date = 0;
    CURLcode rc;
    *body = NULL;
    *len = 0;
    *http_code = 0;
    if (!curl) {
        snprintf(err, errlen, "cannot start libcurl");
        return -1;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &g);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 15L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_date);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &server_date);
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, http_code);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%.160s: %s", url, curl_easy_strerror(rc));
        free(g.data);
        return -1;
    }
    if (!g.data && !(g.data = calloc(1, 1))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *body = g.data;
    *len = g.len;
    if (date)
        *date = server_date > 0 ? server_date : 0;
    return 0;
}
