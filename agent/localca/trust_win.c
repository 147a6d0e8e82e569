/*
 * The Windows trust stores (trust_store.h; security.md 4.3, TLS-05, TLS-07):
 *   - the ROOT certificate store of the current user, which Chrome and Edge
 *     read, and as administrator the machine's (all users);
 *   - Firefox's enterprise-roots policy (Software\Policies\Mozilla\Firefox\
 *     Certificates, ImportEnterpriseRoots = 1), which makes Firefox read those
 *     ROOT stores too (its own default since Firefox 120).
 * The stores are opened through the registry provider
 * (CERT_STORE_PROV_SYSTEM_REGISTRY_W): a delete through the system-store
 * collection can report success and leave the certificate behind (Wine 8).
 * Each CA goes in with the friendly name "ukey-agent local CA <16 hex>", so
 * the CAs of earlier installs are found and removed too, and trusted for TLS
 * server authentication only. On a real Windows
 * every add to the current user's ROOT asks the user (a "Security Warning"
 * no program can answer); "No" fails the install with ERROR_CANCELLED.
 */
#include "localca/trust_store.h"

#include "util/file.h"
#include "util/wstr.h"

#include <windows.h>
#include <wincrypt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROOT_KEY "Software\\Microsoft\\SystemCertificates\\Root"
#define POLICY_KEY "Software\\Policies\\Mozilla\\Firefox\\Certificates"
#define POLICY_VALUE L"ImportEnterpriseRoots"

/* The system's text for a Windows error code, in UTF-8. */
static void win_error(DWORD code, const char *what, char *err, size_t errlen)
{
    wchar_t msg[512];
    char *utf8 = NULL;
    DWORD n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0, msg,
                             sizeof msg / sizeof msg[0], NULL);
    while (n > 0 && (msg[n - 1] == L'\r' || msg[n - 1] == L'\n' || msg[n - 1] == L' '))
        msg[--n] = L'\0';
    if (n > 0)
        utf8 = wstr_to_utf8(msg);
    snprintf(err, errlen, "%s: %s (error %lu)", what, utf8 ? utf8 : "unknown error", (unsigned long)code);
    free(utf8);
}

static int is_machine(const struct trust_store *s)
{
    return strncmp(s->path, "HKLM\\", 5) == 0;
}

static size_t add_store(struct trust_store *stores, size_t n, const char *kind, const char *name,
                        const char *path, int optional)
{
    if (n >= TRUST_MAX_STORES)
        return n;
    memset(&stores[n], 0, sizeof stores[n]);
    snprintf(stores[n].kind, sizeof stores[n].kind, "%s", kind);
    snprintf(stores[n].name, sizeof stores[n].name, "%s", name);
    snprintf(stores[n].path, sizeof stores[n].path, "%s", path);
    stores[n].optional = optional;
    return n + 1;
}

/*
 * The current user's ROOT store and Firefox policy; with `with_system` the
 * machine's (which only an administrator can change, so they count as
 * lacking the CA only once installed into). The user's policy key is
 * optional too: Windows lets only administrators write Software\Policies.
 */
size_t truststore_find(struct trust_store *stores, int create, int with_system, const struct trust_ca *ca)
{
    size_t n = 0;
    (void)create; /* a ROOT store is made by its first write */
    (void)ca;
    n = add_store(stores, n, "certstore", "Windows (current user)", "HKCU\\" ROOT_KEY, 0);
    n = add_store(stores, n, "firefox-policy", "Firefox enterprise roots (current user)", "HKCU\\" POLICY_KEY, 1);
    if (with_system) {
        n = add_store(stores, n, "certstore", "Windows (all users)", "HKLM\\" ROOT_KEY, 1);
        n = add_store(stores, n, "firefox-policy", "Firefox enterprise roots (all users)", "HKLM\\" POLICY_KEY, 1);
    }
    return n;
}

/* ---- certificate stores ------------------------------------------------ */

/* The DER of the CA's PEM file (caller frees), or NULL with `err`. */
static BYTE *ca_der(const struct trust_ca *ca, DWORD *len, char *err, size_t errlen)
{
    char *pem = file_read_all(ca->path, 64 * 1024, NULL);
    BYTE *der = NULL;
    *len = 0;
    /* PEM text, not a path: the ANSI form of the call is right here. */
    if (pem && CryptStringToBinaryA(pem, 0, CRYPT_STRING_BASE64HEADER, NULL, len, NULL, NULL) && *len > 0 &&
        (der = malloc(*len)) != NULL &&
        !CryptStringToBinaryA(pem, 0, CRYPT_STRING_BASE64HEADER, der, len, NULL, NULL)) {
        free(der);
        der = NULL;
    }
    if (!der)
        snprintf(err, errlen, "cannot read the CA certificate %.900s", ca->path);
    free(pem);
    return der;
}

static HCERTSTORE root_open(int machine, int readonly, char *err, size_t errlen)
{
    DWORD flags = machine ? CERT_SYSTEM_STORE_LOCAL_MACHINE : CERT_SYSTEM_STORE_CURRENT_USER;
    HCERTSTORE st;
    if (readonly)
        flags |= CERT_STORE_READONLY_FLAG | CERT_STORE_OPEN_EXISTING_FLAG;
    st = CertOpenStore(CERT_STORE_PROV_SYSTEM_REGISTRY_W, 0, 0, flags, L"ROOT");
    /* A store never written to may have no key yet: then it is empty. */
    if (!st && readonly && GetLastError() == ERROR_FILE_NOT_FOUND)
        st = CertOpenStore(CERT_STORE_PROV_MEMORY, 0, 0, 0, NULL);
    if (!st)
        win_error(GetLastError(), machine ? "cannot open the machine's ROOT store" :
                                            "cannot open the user's ROOT store", err, errlen);
    return st;
}

/* 1 if `c`'s friendly name is a ukey-agent CA's: the prefix and exactly 16
 * lower-case hex digits; the name goes to `nick`. */
static int agent_nick(PCCERT_CONTEXT c, char nick[64])
{
    wchar_t name[128];
    DWORD cb = sizeof name - sizeof name[0];
    char *utf8;
    size_t plen = strlen(TRUST_NICK_PREFIX);
    int ok;

    if (!CertGetCertificateContextProperty(c, CERT_FRIENDLY_NAME_PROP_ID, name, &cb))
        return 0;
    name[cb / sizeof name[0]] = L'\0';
    if (!(utf8 = wstr_to_utf8(name)))
        return 0;
    ok = strlen(utf8) == plen + 16 && strncmp(utf8, TRUST_NICK_PREFIX, plen) == 0 &&
         strspn(utf8 + plen, "0123456789abcdef") == 16;
    if (ok)
        snprintf(nick, 64, "%s", utf8);
    free(utf8);
    return ok;
}

static int is_current(PCCERT_CONTEXT c, const char *nick, const struct trust_ca *ca, const BYTE *der,
                      DWORD len)
{
    return strcmp(nick, ca->nick) == 0 && c->cbCertEncoded == len && memcmp(c->pbCertEncoded, der, len) == 0;
}

/*
 * Walks the ukey-agent CAs in `st`: notes the current one (`ca` and its
 * `der`; both NULL: none is current) in *current and deletes the others
 * when `remove`. Returns how many others there were, or -1 with `err` when
 * a delete failed. The deletes wait until a walk is over: Wine's walk comes
 * back to a context deleted under it, again and again.
 */
static int root_sweep(HCERTSTORE st, const struct trust_ca *ca, const BYTE *der, DWORD len, int remove,
                      int *current, char *err, size_t errlen)
{
    enum { BATCH = 16, PASSES = 8 };
    int others = 0, pass = 0;
    size_t n;
    *current = 0;
    do {
        PCCERT_CONTEXT c = NULL, victims[BATCH];
        n = 0;
        while ((c = CertEnumCertificatesInStore(st, c)) != NULL) {
            char nick[64];
            if (!agent_nick(c, nick))
                continue;
            if (der && is_current(c, nick, ca, der, len)) {
                *current = 1;
                continue;
            }
            if (!remove) {
                others++;
            } else if (n < BATCH) {
                victims[n++] = CertDuplicateCertificateContext(c);
            }
        }
        for (size_t i = 0; i < n; i++) {
            /* The delete frees the context, also when it fails. */
            if (!CertDeleteCertificateFromStore(victims[i])) {
                win_error(GetLastError(), "cannot remove an older ukey-agent CA", err, errlen);
                while (++i < n)
                    CertFreeCertificateContext(victims[i]);
                return -1;
            }
            others++;
        }
    } while (n == BATCH && ++pass < PASSES);
    return others;
}

/*
 * Adds the CA under its friendly name, trusted for TLS server
 * authentication only (the store's own EKU property, as "C,," in NSS: the
 * CA is for the agent's TLS, nothing else). Both properties travel with
 * the context into the store.
 */
static int root_add(HCERTSTORE st, const struct trust_ca *ca, const BYTE *der, DWORD len, char *err,
                    size_t errlen)
{
    PCCERT_CONTEXT c = CertCreateCertificateContext(X509_ASN_ENCODING | PKCS_7_ASN_ENCODING, der, len);
    wchar_t *name = wstr_from_utf8(ca->nick);
    char *server_auth[] = {szOID_PKIX_KP_SERVER_AUTH};
    CERT_ENHKEY_USAGE usage = {1, server_auth};
    BYTE eku[64];
    CRYPT_DATA_BLOB blob;
    int rc = -1;

    if (!c || !name) {
        win_error(GetLastError(), "cannot decode the CA certificate", err, errlen);
        goto out;
    }
    blob.cbData = (DWORD)((wcslen(name) + 1) * sizeof *name);
    blob.pbData = (BYTE *)name;
    if (!CertSetCertificateContextProperty(c, CERT_FRIENDLY_NAME_PROP_ID, 0, &blob)) {
        win_error(GetLastError(), "cannot name the CA certificate", err, errlen);
        goto out;
    }
    blob.cbData = sizeof eku;
    blob.pbData = eku;
    if (!CryptEncodeObject(X509_ASN_ENCODING, X509_ENHANCED_KEY_USAGE, &usage, eku, &blob.cbData) ||
        !CertSetCertificateContextProperty(c, CERT_ENHKEY_USAGE_PROP_ID, 0, &blob)) {
        win_error(GetLastError(), "cannot limit the CA to TLS servers", err, errlen);
        goto out;
    }
    if (!CertAddCertificateContextToStore(st, c, CERT_STORE_ADD_REPLACE_EXISTING, NULL)) {
        DWORD e = GetLastError();
        win_error(e, e == ERROR_CANCELLED ? "the Windows security prompt was declined" :
                                            "cannot add the CA to the ROOT store", err, errlen);
        goto out;
    }
    rc = 0;
out:
    if (c)
        CertFreeCertificateContext(c);
    free(name);
    return rc;
}

static int root_install(int machine, const struct trust_ca *ca, char *err, size_t errlen)
{
    DWORD len;
    BYTE *der = ca_der(ca, &len, err, errlen);
    HCERTSTORE st = der ? root_open(machine, 0, err, errlen) : NULL;
    int current, rc = -1;
    if (st && root_sweep(st, ca, der, len, 1, &current, err, errlen) >= 0)
        rc = current ? 0 : root_add(st, ca, der, len, err, errlen);
    if (st)
        CertCloseStore(st, 0);
    free(der);
    return rc;
}

static int root_remove(int machine, char *err, size_t errlen)
{
    HCERTSTORE st = root_open(machine, 0, err, errlen);
    int current, removed;
    if (!st)
        return -1;
    removed = root_sweep(st, NULL, NULL, 0, 1, &current, err, errlen);
    CertCloseStore(st, 0);
    return removed;
}

/* How many older ukey-agent CAs the store holds (-1 on error); *current
 * says whether it holds `ca`. */
static int root_probe(int machine, const struct trust_ca *ca, int *current, char *err, size_t errlen)
{
    DWORD len;
    BYTE *der = ca_der(ca, &len, err, errlen);
    HCERTSTORE st = der ? root_open(machine, 1, err, errlen) : NULL;
    int old = -1;
    *current = 0;
    if (st) {
        old = root_sweep(st, ca, der, len, 0, current, err, errlen);
        CertCloseStore(st, 0);
    }
    free(der);
    return old;
}

/* ---- Firefox's policy ---------------------------------------------------- */

static HKEY hive(const struct trust_store *s)
{
    return is_machine(s) ? HKEY_LOCAL_MACHINE : HKEY_CURRENT_USER;
}

/* 1 if ImportEnterpriseRoots is a non-zero DWORD under `root`, else 0. */
static int policy_on(HKEY root)
{
    DWORD v = 0, cb = sizeof v;
    LSTATUS r = RegGetValueW(root, L"" POLICY_KEY, POLICY_VALUE, RRF_RT_REG_DWORD, NULL, &v, &cb);
    return r == ERROR_SUCCESS && v != 0;
}

/* Turns the policy on, unless someone else (an administrator's policy) had
 * it on before: then it is theirs, left alone and not recorded, so that
 * uninstalling never takes it away. */
static int policy_install(const struct trust_store *s, char *err, size_t errlen)
{
    DWORD one = 1;
    HKEY key;
    LSTATUS r;
    if (!s->recorded && policy_on(hive(s))) {
        snprintf(err, errlen, "already on, set by someone else: left as it is");
        return 1;
    }
    r = RegCreateKeyExW(hive(s), L"" POLICY_KEY, 0, NULL, 0, KEY_SET_VALUE, NULL, &key, NULL);
    if (r == ERROR_SUCCESS) {
        r = RegSetValueExW(key, POLICY_VALUE, 0, REG_DWORD, (const BYTE *)&one, sizeof one);
        RegCloseKey(key);
    }
    if (r == ERROR_ACCESS_DENIED && !is_machine(s)) {
        snprintf(err, errlen, "only an administrator can set it (Firefox 120 and later read the Windows "
                              "store without it)");
        return 1;
    }
    if (r != ERROR_SUCCESS) {
        win_error((DWORD)r, "cannot set Firefox's ImportEnterpriseRoots policy", err, errlen);
        return -1;
    }
    return 0;
}

/* Deletes `sub` under `root` if it has neither values nor subkeys. */
static void delete_if_empty(HKEY root, const wchar_t *sub)
{
    DWORD keys = 1, values = 1;
    HKEY k;
    if (RegOpenKeyExW(root, sub, 0, KEY_QUERY_VALUE, &k) != ERROR_SUCCESS)
        return;
    RegQueryInfoKeyW(k, NULL, NULL, NULL, &keys, NULL, NULL, &values, NULL, NULL, NULL, NULL);
    RegCloseKey(k);
    if (keys == 0 && values == 0)
        RegDeleteKeyW(root, sub);
}

/* Takes the policy out again if this agent put it there (trust.json says
 * so), with the keys it left empty. */
static int policy_remove(const struct trust_store *s, char *err, size_t errlen)
{
    LSTATUS r;
    if (!s->recorded)
        return 0;
    r = RegDeleteKeyValueW(hive(s), L"" POLICY_KEY, POLICY_VALUE);
    if (r != ERROR_SUCCESS && r != ERROR_FILE_NOT_FOUND) {
        win_error((DWORD)r, "cannot remove Firefox's ImportEnterpriseRoots policy", err, errlen);
        return -1;
    }
    delete_if_empty(hive(s), L"Software\\Policies\\Mozilla\\Firefox\\Certificates");
    delete_if_empty(hive(s), L"Software\\Policies\\Mozilla\\Firefox");
    delete_if_empty(hive(s), L"Software\\Policies\\Mozilla");
    return 0;
}

/* Firefox trusts the CA through the policy when the policy is on and a
 * ROOT store it reads (the user's or the machine's) holds the CA. */
static int policy_probe(const struct trust_store *s, const struct trust_ca *ca, int *current, char *err,
                        size_t errlen)
{
    int user = 0, machine = 0;
    *current = 0;
    if (!policy_on(hive(s)))
        return 0;
    if (root_probe(0, ca, &user, err, errlen) < 0 || root_probe(1, ca, &machine, err, errlen) < 0)
        err[0] = '\0'; /* the ROOT store's own row reports its error */
    *current = user || machine;
    return 0;
}

/* ---- trust_store.h ------------------------------------------------------- */

static int is_policy(const struct trust_store *s)
{
    return strcmp(s->kind, "firefox-policy") == 0;
}

int truststore_install(struct trust_store *s, const struct trust_ca *ca, char *err, size_t errlen)
{
    return is_policy(s) ? policy_install(s, err, errlen) : root_install(is_machine(s), ca, err, errlen);
}

int truststore_remove(const struct trust_store *s, char *err, size_t errlen)
{
    return is_policy(s) ? policy_remove(s, err, errlen) : root_remove(is_machine(s), err, errlen);
}

int truststore_probe(const struct trust_store *s, const struct trust_ca *ca, int *current, char *err,
                     size_t errlen)
{
    return is_policy(s) ? policy_probe(s, ca, current, err, errlen)
                        : root_probe(is_machine(s), ca, current, err, errlen);
}
