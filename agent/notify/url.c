/* Which renewal links a notification may open; see notify.h. The same on
 * every platform. */
#include "notify/notify.h"

#include <string.h>

int notify_url_allowed(const char *url)
{
    static const char *const loopback[] = {"http://127.0.0.1", "http://[::1]", "http://localhost"};
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return 0;
    if (strncmp(url, "https://", 8) == 0)
        return url[8] != '\0' && !strchr("/?#", url[8]); /* any host */
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
        size_t len = strlen(loopback[i]);
        const char *p = url + len;
        if (strncmp(url, loopback[i], len) != 0)
            continue;
        /* Only a port may follow the host, then a path: "http://127.0.0.1:80@evil.example/"
         * names evil.example (userinfo), "http://localhost.evil.example/" another host. */
        if (*p == ':') {
            size_t digits = strspn(p + 1, "0123456789");
            if (digits < 1 || digits > 5)
                return 0;
            p += 1 + digits;
        }
        return *p == '\0' || *p == '/';
    }
    return 0;
}
