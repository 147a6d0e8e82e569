/*
 * A PKCS#11 module for the tests of the agent's PKCS#11 backend, for what
 * SoftHSM2 and OpenSC cannot be made to do on cue. Its one slot is steered
 * by files in the directory named by UKEY_P11MOCK_DIR:
 *   present  the token is in the slot (its content is the token's label)
 *   locked   the token says CKF_USER_PIN_LOCKED, and C_Login answers
 *            CKR_PIN_LOCKED
 *   hang     C_GetTokenInfo does not return while the file exists (a module
 *            stuck inside a call, as OpenSC 0.23 can be)
 *   pinpad   the token has a protected authentication path: C_Login
 *            without a PIN is the user typing it on the token, which lasts
 *            while the file `typing` exists and then succeeds
 *   so-final-try, so-locked  the token says CKF_SO_PIN_FINAL_TRY /
 *            CKF_SO_PIN_LOCKED (C_Login as SO then answers CKR_PIN_LOCKED)
 * Every C_Login appends "C_Login <user type>" to the file `logins`.
 * It has no C_WaitForSlotEvent (CKR_FUNCTION_NOT_SUPPORTED: the agent polls)
 * and no objects. Only the functions the agent calls are filled in.
 * On Windows it is p11mock.dll, exporting C_GetFunctionList.
 */
#define CRYPTOKI_EXPORTS /* pkcs11.h: C_GetFunctionList is ours to export (Windows) */
#include <p11-kit/pkcs11.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SLOT 7

static int exists(const char *name)
{
    char path[512];
    struct stat st;
    const char *dir = getenv("UKEY_P11MOCK_DIR");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", name);
    return stat(path, &st) == 0;
}

static void pad(unsigned char *field, size_t len, const char *text)
{
    size_t n = strlen(text) < len ? strlen(text) : len;
    memset(field, ' ', len);
    memcpy(field, text, n);
}

static CK_RV initialize(void *args) { (void)args; return CKR_OK; }
static CK_RV finalize(void *reserved) { (void)reserved; return CKR_OK; }

static CK_RV get_info(CK_INFO *info)
{
    memset(info, 0, sizeof *info);
    info->cryptokiVersion.major = 2;
    info->cryptokiVersion.minor = 40;
    pad(info->manufacturerID, sizeof info->manufacturerID, "ukey-agent tests");
    pad(info->libraryDescription, sizeof info->libraryDescription, "p11mock");
    return CKR_OK;
}

static CK_RV get_slot_list(CK_BBOOL token_present, CK_SLOT_ID *list, CK_ULONG *count)
{
    CK_ULONG n = !token_present || exists("present");
    if (list && *count < n)
        return *count = n, CKR_BUFFER_TOO_SMALL;
    if (list && n)
        list[0] = SLOT;
    *count = n;
    return CKR_OK;
}

static CK_RV get_slot_info(CK_SLOT_ID slot, CK_SLOT_INFO *info)
{
    if (slot != SLOT)
        return CKR_SLOT_ID_INVALID;
    memset(info, 0, sizeof *info);
    pad(info->slotDescription, sizeof info->slotDescription, "Mock slot");
    pad(info->manufacturerID, sizeof info->manufacturerID, "ukey-agent tests");
    info->flags = CKF_REMOVABLE_DEVICE | (exists("present") ? CKF_TOKEN_PRESENT : 0);
    return CKR_OK;
}

static CK_RV get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
    while (exists("hang"))
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    if (slot != SLOT)
        return CKR_SLOT_ID_INVALID;
    if (!exists("present"))
        return CKR_TOKEN_NOT_PRESENT;
    memset(info, 0, sizeof *info);
    pad(info->label, sizeof info->label, "Mock UKey");
    pad(info->manufacturerID, sizeof info->manufacturerID, "ukey-agent tests");
    pad(info->model, sizeof info->model, "p11mock");
    pad(info->serialNumber, sizeof info->serialNumber, "0001");
    info->flags = CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED |
                  (exists("locked") ? CKF_USER_PIN_LOCKED : 0) |
                  (exists("pinpad") ? CKF_PROTECTED_AUTHENTICATION_PATH : 0) |
                  (exists("so-final-try") ? CKF_SO_PIN_FINAL_TRY : 0) | (exists("so-locked") ? CKF_SO_PIN_LOCKED : 0);
    info->ulMinPinLen = 6;
    info->ulMaxPinLen = 16;
    return CKR_OK;
}

static CK_RV open_session(CK_SLOT_ID slot, CK_FLAGS flags, void *app, CK_NOTIFY notify, CK_SESSION_HANDLE *h)
{
    (void)flags, (void)app, (void)notify;
    if (slot != SLOT)
        return CKR_SLOT_ID_INVALID;
    if (!exists("present"))
        return CKR_TOKEN_NOT_PRESENT;
    *h = 1;
    return CKR_OK;
}

static CK_RV close_session(CK_SESSION_HANDLE h) { return h == 1 ? CKR_OK : CKR_SESSION_HANDLE_INVALID; }

static CK_RV login(CK_SESSION_HANDLE h, CK_USER_TYPE who, unsigned char *pin, CK_ULONG len)
{
    char path[512];
    const char *dir = getenv("UKEY_P11MOCK_DIR");
    FILE *f;
    (void)h, (void)len;
    snprintf(path, sizeof path, "%s/logins", dir ? dir : ".");
    if ((f = fopen(path, "a"))) {
        fprintf(f, "C_Login %lu\n", (unsigned long)who);
        fclose(f);
    }
    if (exists(who == CKU_SO ? "so-locked" : "locked"))
        return CKR_PIN_LOCKED;
    if (pin || !exists("pinpad"))
        return pin ? CKR_PIN_INCORRECT : CKR_ARGUMENTS_BAD;
    while (exists("typing"))
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    return CKR_OK;
}

static CK_RV logout(CK_SESSION_HANDLE h) { (void)h; return CKR_USER_NOT_LOGGED_IN; }

static CK_RV find_init(CK_SESSION_HANDLE h, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    (void)h, (void)tmpl, (void)n;
    return CKR_OK;
}

static CK_RV find(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *out, CK_ULONG cap, CK_ULONG *n)
{
    (void)h, (void)out, (void)cap;
    *n = 0;
    return CKR_OK;
}

static CK_RV find_final(CK_SESSION_HANDLE h) { (void)h; return CKR_OK; }

static CK_RV wait_for_slot_event(CK_FLAGS flags, CK_SLOT_ID *slot, void *reserved)
{
    (void)flags, (void)slot, (void)reserved;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_FUNCTION_LIST functions = {
    .version = {2, 40},
    .C_Initialize = initialize,
    .C_Finalize = finalize,
    .C_GetInfo = get_info,
    .C_GetFunctionList = C_GetFunctionList,
    .C_GetSlotList = get_slot_list,
    .C_GetSlotInfo = get_slot_info,
    .C_GetTokenInfo = get_token_info,
    .C_OpenSession = open_session,
    .C_CloseSession = close_session,
    .C_Login = login,
    .C_Logout = logout,
    .C_FindObjectsInit = find_init,
    .C_FindObjects = find,
    .C_FindObjectsFinal = find_final,
    .C_WaitForSlotEvent = wait_for_slot_event,
};

CK_RV C_GetFunctionList(CK_FUNCTION_LIST **list)
{
    *list = &functions;
    return CKR_OK;
}
