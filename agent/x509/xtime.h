/* Certificate times as time_t (UTC). Shared by the agent and libukeyverify. */
#ifndef UKEY_X509_XTIME_H
#define UKEY_X509_XTIME_H

#include <mbedtls/x509.h>
#include <time.h>

time_t x509_time_utc(const mbedtls_x509_time *t);

#endif
