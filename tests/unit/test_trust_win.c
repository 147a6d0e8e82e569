/*
 * trust_win.c against the real registry stores (Windows; run under Wine):
 * install puts the CA in the current user's ROOT store, where Windows keeps
 * it (HKCU\Software\Microsoft\SystemCertificates\Root\Certificates\<SHA-1>),
 * and turns Firefox's enterprise-roots policy on; status says so; a new CA
 * (another install, a renewal) replaces the older one; uninstall takes
 * them out, and the policy only when this install set it.
 */
#include "check.h"

#include "localca/localca.h"
#include "localca/trust.h"
#include "util/file.h"
#include "util/process.h"
#include "util/rng.h"
#include "util/wstr.h"

#include <windows.h>
#include <wincrypt.h>

#include <stdlib.h>

#define CERTS_KEY L"Software\\Microsoft\\SystemCertificates\\Root\\Certificates\\"
#define POLICY_KEY L"Software\\Policies\\Mozilla\\Firefox\\Certificates"
#define USER_STORE "Windows (current user)"

static const char *const state_files[] = {LOCALCA_CA_FILE, LOCALCA_CERT_FILE, LOCALCA_KEY_FILE, "trust.json"};

/* A new state directory's path under %TEMP% (not created yet). */
static void state_path(char *out, size_t cap, const char *tag)
{
    wchar_t tmp[MAX_PATH + 1];
    char *t;
    GetTempPathW(MAX_PATH + 1, tmp);
    t = wstr_to_utf8(tmp);
    snprintf(out, cap, "%sukey-test-trust-%lu-%s", t ? t : "", (unsigned long)GetCurrentProcessId(), tag);
    free(t);
}

static void state_remove(const char *dir)
{
    char path[4200];
    wchar_t *w;
    for (size_t i = 0; i < sizeof state_files / sizeof state_files[0]; i++) {
        snprintf(path, sizeof path, "%s\\%s", dir, state_files[i]);
        if ((w = wstr_from_utf8(path)) != NULL)
            DeleteFileW(w);
        free(w);
    }
    if ((w = wstr_from_utf8(dir)) != NULL)
        RemoveDirectoryW(w);
    free(w);
}

static char *read_state(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s\\%s", dir, name);
    return file_read_all(path, 1 << 20, NULL);
}

/* A context for `dir`'s ca.crt (caller frees), or NULL. */
static PCCERT_CONTEXT ca_context(const char *dir)
{
    char *pem = read_state(dir, LOCALCA_CA_FILE);
    BYTE der[8192];
    DWORD len = sizeof der;
    int ok = pem && CryptStringToBinaryA(pem, 0, CRYPT_STRING_BASE64HEADER, der, &len, NULL, NULL);
    free(pem);
    return ok ? CertCreateCertificateContext(X509_ASN_ENCODING, der, len) : NULL;
}

/* 1 if `hive` (HKCU, HKLM) holds the certificate of `dir`'s ca.crt under
 * its SHA-1, where Windows keeps the ROOT store; 0 if not; -1 if unreadable. */
static int registry_has_ca(HKEY hive, const char *dir)
{
    PCCERT_CONTEXT c = ca_context(dir);
    BYTE sha1[20];
    DWORD cb = sizeof sha1;
    wchar_t key[160];
    HKEY k;
    int n;

    if (!c)
        return -1;
    n = CertGetCertificateContextProperty(c, CERT_SHA1_HASH_PROP_ID, sha1, &cb);
    CertFreeCertificateContext(c);
    if (!n || cb != sizeof sha1)
        return -1;
    n = swprintf(key, sizeof key / sizeof key[0], L"%ls", CERTS_KEY);
    for (int i = 0; i < 20; i++)
        n += swprintf(key + n, sizeof key / sizeof key[0] - (size_t)n, L"%02X", sha1[i]);
    if (RegOpenKeyExW(hive, key, 0, KEY_READ, &k) != ERROR_SUCCESS)
        return 0;
    RegCloseKey(k);
    return 1;
}

/* 1 if the user's ROOT store trusts `dir`'s CA for TLS servers and for
 * nothing else (its EKU property, NSS's "C,,"); 0 if not; -1 if absent. */
static int root_server_auth_only(const char *dir)
{
    PCCERT_CONTEXT want = ca_context(dir), c = NULL;
    HCERTSTORE st = CertOpenStore(CERT_STORE_PROV_SYSTEM_REGISTRY_W, 0, 0, CERT_SYSTEM_STORE_CURRENT_USER, L"ROOT");
    BYTE buf[256];
    DWORD cb = sizeof buf;
    CERT_ENHKEY_USAGE *usage = (CERT_ENHKEY_USAGE *)buf;
    int rc = -1;

    if (want && st)
        c = CertFindCertificateInStore(st, X509_ASN_ENCODING, 0, CERT_FIND_EXISTING, want, NULL);
    if (c) {
        rc = CertGetEnhancedKeyUsage(c, CERT_FIND_PROP_ONLY_ENHKEY_USAGE_FLAG, usage, &cb) &&
             usage->cUsageIdentifier == 1 && strcmp(usage->rgpszUsageIdentifier[0], szOID_PKIX_KP_SERVER_AUTH) == 0;
        CertFreeCertificateContext(c);
    }
    if (st)
        CertCloseStore(st, 0);
    if (want)
        CertFreeCertificateContext(want);
    return rc;
}

static int policy_on(HKEY hive)
{
    DWORD v = 0, cb = sizeof v;
    return RegGetValueW(hive, POLICY_KEY, L"ImportEnterpriseRoots", RRF_RT_REG_DWORD, NULL, &v, &cb) ==
               ERROR_SUCCESS && v == 1;
}

/* The status row of store `name` of `dir`: current_ca, and old_cas in *old. */
static int store_current(const char *dir, const char *name, long long *old)
{
    json_t *stores = trust_stores_json(dir), *s;
    size_t i;
    int current = -1;
    json_array_foreach(stores, i, s) {
        if (strcmp(json_string_value(json_object_get(s, "name")), name) != 0)
            continue;
        current = json_is_true(json_object_get(s, "current_ca"));
        if (old)
            *old = json_integer_value(json_object_get(s, "old_cas"));
    }
    json_decref(stores);
    return current;
}

static int copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    char to[4200], *text = read_state(from_dir, name);
    int rc;
    snprintf(to, sizeof to, "%s\\%s", to_dir, name);
    if (!text)
        return -1;
    rc = file_write_atomic(to, text, strlen(text), 0600);
    free(text);
    return rc;
}

int main(void)
{
    static const char broken[] = "{\"stores\": [1, {\"kind\": 2}";
    char a[4200], b[4200], err[512], path[4300], *text;
    enum localca_result res;
    time_t now = time(NULL);
    long long old = -1;

    state_path(a, sizeof a, "a");
    state_path(b, sizeof b, "b");
    CHECK(rng_init() == 0);
    CHECK(localca_ensure(a, now, &res, err, sizeof err) == 0);
    CHECK(localca_ensure(b, now, &res, err, sizeof err) == 0);

    /* Nothing installed yet: status says missing. */
    CHECK(registry_has_ca(HKEY_CURRENT_USER, a) == 0);
    CHECK(trust_status(a, 0, stdout) == 1);

    /* Install: the user's ROOT store (the registry key) and the policy. */
    CHECK(trust_install(a, 0, stdout) == 0);
    CHECK(registry_has_ca(HKEY_CURRENT_USER, a) == 1);
    CHECK(root_server_auth_only(a) == 1);
    CHECK(policy_on(HKEY_CURRENT_USER));
    CHECK(store_current(a, USER_STORE, &old) == 1 && old == 0);
    CHECK(store_current(a, "Firefox enterprise roots (current user)", NULL) == 1);
    CHECK(trust_status(a, 1, stdout) == 0);
    /* trust.json records both, for a renewal and for uninstall. */
    text = read_state(a, "trust.json");
    CHECK(text && strstr(text, "\"certstore\"") && strstr(text, "\"firefox-policy\""));
    free(text);
    /* Again: still exactly one ukey-agent CA. */
    CHECK(trust_install(a, 0, stdout) == 0);
    CHECK(store_current(a, USER_STORE, &old) == 1 && old == 0);

    /* Another install's CA replaces this one; the policy, set by the first,
     * is not the second's to own. */
    CHECK(trust_install(b, 0, stdout) == 0);
    CHECK(registry_has_ca(HKEY_CURRENT_USER, b) == 1);
    CHECK(registry_has_ca(HKEY_CURRENT_USER, a) == 0);
    CHECK(store_current(b, USER_STORE, &old) == 1 && old == 0);
    CHECK(store_current(a, USER_STORE, &old) == 0 && old == 1);
    CHECK(trust_status(a, 0, stdout) == 1);

    /* Uninstall by the second: its CA goes, the first's policy stays. */
    CHECK(trust_uninstall(b, 0, stdout) == 0);
    CHECK(registry_has_ca(HKEY_CURRENT_USER, b) == 0);
    CHECK(policy_on(HKEY_CURRENT_USER));
    CHECK(store_current(b, USER_STORE, &old) == 0 && old == 0);
    CHECK(trust_status(b, 0, stdout) == 1);

    /* A renewal (a new ca.crt in the state directory) goes where the
     * manifest says the old CA went, and replaces it. */
    CHECK(trust_install(a, 0, stdout) == 0);
    CHECK(copy_file(b, a, LOCALCA_CA_FILE) == 0);
    CHECK(trust_refresh(a) == 0);
    CHECK(registry_has_ca(HKEY_CURRENT_USER, a) == 1); /* a's ca.crt is b's now */
    CHECK(store_current(a, USER_STORE, &old) == 1 && old == 0);

    /* Uninstall by the first: the CA and the policy it set are gone. */
    CHECK(trust_uninstall(a, 0, stdout) == 0);
    CHECK(registry_has_ca(HKEY_CURRENT_USER, a) == 0);
    CHECK(!policy_on(HKEY_CURRENT_USER));
    CHECK(store_current(a, USER_STORE, &old) == 0 && old == 0);

    /* As administrator (Wine's default user is one): the machine's ROOT
     * store and policy as well, for every user. */
    if (process_is_admin()) {
        CHECK(trust_install(a, 1, stdout) == 0);
        CHECK(registry_has_ca(HKEY_LOCAL_MACHINE, a) == 1);
        CHECK(policy_on(HKEY_LOCAL_MACHINE));
        CHECK(store_current(a, "Windows (all users)", &old) == 1 && old == 0);
        CHECK(trust_status(a, 0, stdout) == 0);
        CHECK(trust_uninstall(a, 1, stdout) == 0);
        CHECK(registry_has_ca(HKEY_LOCAL_MACHINE, a) == 0);
        CHECK(registry_has_ca(HKEY_CURRENT_USER, a) == 0);
        CHECK(!policy_on(HKEY_LOCAL_MACHINE));
    } else {
        printf("not elevated: the machine's stores are not tested\n");
    }

    /* A broken trust.json is no manifest: status and install go on. */
    snprintf(path, sizeof path, "%s\\trust.json", a);
    CHECK(file_write_atomic(path, broken, strlen(broken), 0600) == 0);
    CHECK(trust_status(a, 0, stdout) == 1);
    CHECK(trust_install(a, 0, stdout) == 0);
    CHECK(store_current(a, USER_STORE, &old) == 1 && old == 0);
    CHECK(trust_uninstall(a, 0, stdout) == 0);
    CHECK(!policy_on(HKEY_CURRENT_USER));

    /* A state directory without a CA is a clear error, not a crash. */
    state_remove(b);
    CHECK(trust_install(b, 0, stdout) == -1);
    CHECK(trust_status(b, 1, stdout) == -1);
    CHECK(trust_stores_json(b) == NULL);

    state_remove(a);
    return check_done();
}
