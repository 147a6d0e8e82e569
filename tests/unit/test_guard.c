/* Origin syntax, allow-list matching and the request guard (security.md WEB-01..05). */
#include "check.h"

#include "server/guard.h"
#include "util/origin.h"

static void test_origin_syntax(void)
{
    CHECK(origin_valid("https://portal.gov.example"));
    CHECK(origin_valid("http://localhost:8080"));
    CHECK(origin_valid("https://[::1]:27443"));
    CHECK(origin_valid("https://127.0.0.1:27443"));
    CHECK(!origin_valid("https://portal.gov.example/"));
    CHECK(!origin_valid("https://portal.gov.example."));
    CHECK(!origin_valid("https://PORTAL.gov.example"));
    CHECK(!origin_valid("https://portal.gov.example:0"));
    CHECK(!origin_valid("https://portal.gov.example:65536"));
    CHECK(!origin_valid("https://portal.gov.example:080"));
    CHECK(!origin_valid("https://user@portal.gov.example"));
    CHECK(!origin_valid("https://portal..gov.example"));
    CHECK(!origin_valid("https://-portal.gov.example"));
    CHECK(!origin_valid("ftp://portal.gov.example"));
    CHECK(!origin_valid("null"));
    CHECK(!origin_valid(""));
    CHECK(!origin_valid(NULL));
    CHECK(origin_pattern_valid("https://*.example.gov.cn"));
    CHECK(origin_pattern_valid("https://*.example.gov.cn:8443"));
    CHECK(!origin_pattern_valid("https://*.cn"));
    CHECK(!origin_pattern_valid("http://*.example.gov.cn"));
    CHECK(!origin_pattern_valid("https://*"));
    CHECK(!origin_pattern_valid("https://a.*.example.gov.cn"));
}

static void test_origin_match(void)
{
    const char *ok = "https://portal.gov.example";
    const char *pat = "https://*.example.gov.cn";
    /* The bypass vectors of security.md WEB-02: all refused. */
    static const char *const bad[] = {
        "https://portal.gov.example.attacker.example", "https://attacker.example/portal.gov.example",
        "https://evilportal.gov.example", "https://x.portal.gov.example", "http://portal.gov.example",
        "https://portal.gov.example:444", "https://portal.gov.example.",
        "https://portal.gov.example@attacker.example", "https://PORTAL.gov.example%2eattacker.example",
        "null", "",
    };
    CHECK(origin_matches(ok, ok));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!origin_matches(ok, bad[i]));
    CHECK(origin_matches(pat, "https://a.example.gov.cn"));
    CHECK(origin_matches(pat, "https://a.b.example.gov.cn"));
    CHECK(!origin_matches(pat, "https://example.gov.cn"));
    CHECK(!origin_matches(pat, "https://aexample.gov.cn"));
    CHECK(!origin_matches(pat, "https://a.example.gov.cn:8443"));
    CHECK(!origin_matches(pat, "http://a.example.gov.cn"));
    CHECK(!origin_matches(pat, "https://a.example.gov.cn.evil.example"));
    CHECK(origin_matches("https://*.example.gov.cn:8443", "https://a.example.gov.cn:8443"));
    CHECK(!origin_matches("https://*.example.gov.cn:8443", "https://a.example.gov.cn"));
}

static void test_guard(void)
{
    char *origins[] = {"https://portal.gov.example"};
    struct guard_policy pol;
    struct guard_request req = {0};
    const char *cors;

    guard_policy_init(&pol, 27443, origins, 1);
    CHECK(guard_host_allowed(&pol, "127.0.0.1:27443"));
    CHECK(guard_host_allowed(&pol, "localhost:27443"));
    CHECK(guard_host_allowed(&pol, "LOCALHOST:27443"));
    CHECK(guard_host_allowed(&pol, "[::1]:27443"));
    /* DNS rebinding vectors (security.md WEB-05). */
    CHECK(!guard_host_allowed(&pol, "attacker.example:27443"));
    CHECK(!guard_host_allowed(&pol, "localhost:27444"));
    CHECK(!guard_host_allowed(&pol, "localhost"));
    CHECK(!guard_host_allowed(&pol, "localhost:27443.evil.example"));
    CHECK(!guard_host_allowed(&pol, "127.0.0.1:27443@evil.example"));
    CHECK(!guard_host_allowed(&pol, "0.0.0.0:27443"));
    CHECK(!guard_host_allowed(&pol, "127.0.0.2:27443"));
    CHECK(!guard_host_allowed(&pol, NULL));

    CHECK(guard_origin_allowed(&pol, "https://127.0.0.1:27443"));
    CHECK(guard_origin_allowed(&pol, "https://localhost:27443"));
    CHECK(!guard_origin_allowed(&pol, "http://127.0.0.1:27443"));
    CHECK(!guard_origin_allowed(&pol, "https://127.0.0.1:27444"));

    req.host = "127.0.0.1:27443";
    req.host_count = 1;
    req.is_api = 1;
    CHECK(guard_check(&pol, &req, &cors) == UKEY_OK && cors == NULL);
    req.origin = "https://portal.gov.example";
    req.origin_count = 1;
    CHECK(guard_check(&pol, &req, &cors) == UKEY_OK);
    CHECK_STR(cors, "https://portal.gov.example");
    req.origin = "https://attacker.example";
    CHECK(guard_check(&pol, &req, &cors) == UKEY_ERR_ORIGIN_NOT_ALLOWED && cors == NULL);
    req.origin = "null";
    CHECK(guard_check(&pol, &req, &cors) == UKEY_ERR_ORIGIN_NOT_ALLOWED);
    req.origin = "https://portal.gov.example";
    req.origin_count = 2;
    CHECK(guard_check(&pol, &req, &cors) == UKEY_ERR_BAD_REQUEST);
    req.origin = NULL;
    req.origin_count = 0;
    req.host = "attacker.example:27443";
    CHECK(guard_check(&pol, &req, &cors) == UKEY_ERR_HOST_NOT_ALLOWED);
    req.host = "127.0.0.1:27443";
    req.host_count = 2;
    CHECK(guard_check(&pol, &req, &cors) == UKEY_ERR_BAD_REQUEST);
    req.host_count = 1;
    /* Fetch Metadata: a cross-site <img>/<script> on the API has no Origin. */
    req.sec_fetch_site = "cross-site";
    CHECK(guard_check(&pol, &req, &cors) == UKEY_ERR_ORIGIN_NOT_ALLOWED);
    req.sec_fetch_site = "same-site";
    CHECK(guard_check(&pol, &req, &cors) == UKEY_ERR_ORIGIN_NOT_ALLOWED);
    req.sec_fetch_site = "same-origin";
    CHECK(guard_check(&pol, &req, &cors) == UKEY_OK);
    req.sec_fetch_site = "none";
    CHECK(guard_check(&pol, &req, &cors) == UKEY_OK);
    /* ...but static files (the SDK in a portal's <script src>) are fine. */
    req.sec_fetch_site = "cross-site";
    req.is_api = 0;
    CHECK(guard_check(&pol, &req, &cors) == UKEY_OK);
}

/* guard_add_header(): what the guard learns from header lines (issue 17, W9). */
static void test_header_lines(void)
{
    char *origins[] = {"https://portal.gov.example"};
    struct guard_policy pol;
    struct guard_request req = {0};
    const char *cors;

    guard_policy_init(&pol, 27443, origins, 1);
    guard_add_header(&req, "host", "127.0.0.1:27443", 15);
    guard_add_header(&req, "ORIGIN", "https://portal.gov.example", 26);
    guard_add_header(&req, "Sec-Fetch-Site", "same-origin", 11);
    guard_add_header(&req, "Content-Length", "2", 1);
    CHECK(req.host_count == 1 && req.origin_count == 1 && !req.nul);
    CHECK(guard_check(&pol, &req, &cors) == UKEY_OK);
    CHECK_STR(cors, "https://portal.gov.example");
    /* Two framings of one body. */
    guard_add_header(&req, "Transfer-Encoding", "chunked", 7);
    CHECK(guard_check(&pol, &req, &cors) == UKEY_ERR_BAD_REQUEST && cors == NULL);
    req.transfer_encoding_count = 0;
    guard_add_header(&req, "content-length", "2", 1);
    CHECK(guard_check(&pol, &req, &cors) == UKEY_ERR_BAD_REQUEST);
    /* A NUL anywhere in a value, which a C string would cut. */
    memset(&req, 0, sizeof req);
    guard_add_header(&req, "Host", "127.0.0.1:27443\0.evil.example", 28);
    CHECK(req.nul && strcmp(req.host, "127.0.0.1:27443") == 0);
    CHECK(guard_check(&pol, &req, &cors) == UKEY_ERR_BAD_REQUEST);
    memset(&req, 0, sizeof req);
    guard_add_header(&req, "Host", "127.0.0.1:27443", 15);
    guard_add_header(&req, "X-Other", "a\0", 2);
    CHECK(guard_check(&pol, &req, &cors) == UKEY_ERR_BAD_REQUEST);
}

static void test_content_type(void)
{
    CHECK(guard_content_type_json("application/json"));
    CHECK(guard_content_type_json("application/json; charset=utf-8"));
    CHECK(guard_content_type_json("Application/JSON;charset=UTF-8"));
    CHECK(!guard_content_type_json("text/plain"));
    CHECK(!guard_content_type_json("application/x-www-form-urlencoded"));
    CHECK(!guard_content_type_json("multipart/form-data"));
    CHECK(!guard_content_type_json("application/jsonp"));
    CHECK(!guard_content_type_json("application/json; charset=latin1"));
    CHECK(!guard_content_type_json(NULL));
}

int main(void)
{
    test_origin_syntax();
    test_header_lines();

    test_origin_match();
    test_guard();
    test_content_type();
    return check_done();
}
