/*
 * GM/T 0016 (SKF) types, structs, constants and the prototypes the soft
 * token (softskf.c) exports, written from the spec's semantics as
 * /work/shared/research/sm2-skf-sof.md 1.2-1.7 describes them.
 *
 * Two ABIs from one header, because vendors disagree (research 1.2):
 *   default            ULONG = uint32_t, BOOL = int32_t  (the spec; DEVINFO 294 bytes)
 *   SOFTSKF_ULONG64    ULONG = unsigned long, BOOL = long (LP64 vendor headers; DEVINFO 326)
 * Structs are #pragma pack(1) in both, as the spec-derived headers have them.
 */
#ifndef SOFTSKF_SKF_H
#define SOFTSKF_SKF_H

#include <stdint.h>

#ifdef SOFTSKF_ULONG64
typedef unsigned long ULONG;
typedef long BOOL;
#else
typedef uint32_t ULONG;
typedef int32_t BOOL;
#endif
typedef uint8_t BYTE;
typedef char CHAR;
typedef char *LPSTR;
typedef void *HANDLE;
typedef HANDLE DEVHANDLE;
typedef HANDLE HAPPLICATION;
typedef HANDLE HCONTAINER;

#ifndef TRUE
#define TRUE 1
#define FALSE 0
#endif

#pragma pack(push, 1)
typedef struct {
    BYTE major;
    BYTE minor;
} VERSION;

typedef struct {
    VERSION Version;
    CHAR Manufacturer[64];
    CHAR Issuer[64];
    CHAR Label[32];
    CHAR SerialNumber[32];
    VERSION HWVersion;
    VERSION FirmwareVersion;
    ULONG AlgSymCap;
    ULONG AlgAsymCap;
    ULONG AlgHashCap;
    ULONG DevAuthAlgId;
    ULONG TotalSpace;
    ULONG FreeSpace;
    ULONG MaxECCBufferSize;
    ULONG MaxBufferSize;
    BYTE Reserved[64];
} DEVINFO;

typedef struct {
    ULONG AlgID;
    ULONG BitLen;
    BYTE Modulus[256];
    BYTE PublicExponent[4];
} RSAPUBLICKEYBLOB;

typedef struct {
    ULONG BitLen;
    BYTE XCoordinate[64];
    BYTE YCoordinate[64];
} ECCPUBLICKEYBLOB;

typedef struct {
    BYTE r[64];
    BYTE s[64];
} ECCSIGNATUREBLOB;
#pragma pack(pop)

/* The size table of research 1.2: an ABI mistake here would make the
 * agent's ABI probe (132 vs 136) test nothing. */
#ifdef SOFTSKF_ULONG64
_Static_assert(sizeof(DEVINFO) == 326, "DEVINFO, pack(1), 64-bit ULONG");
_Static_assert(sizeof(ECCPUBLICKEYBLOB) == 136, "ECCPUBLICKEYBLOB, 64-bit ULONG");
_Static_assert(sizeof(RSAPUBLICKEYBLOB) == 276, "RSAPUBLICKEYBLOB, pack(1), 64-bit ULONG");
#else
_Static_assert(sizeof(DEVINFO) == 294, "DEVINFO, pack(1), 32-bit ULONG");
_Static_assert(sizeof(ECCPUBLICKEYBLOB) == 132, "ECCPUBLICKEYBLOB, 32-bit ULONG");
_Static_assert(sizeof(RSAPUBLICKEYBLOB) == 268, "RSAPUBLICKEYBLOB, 32-bit ULONG");
#endif
_Static_assert(sizeof(ECCSIGNATUREBLOB) == 128, "ECCSIGNATUREBLOB");

/* PIN types, device states, container types (research 1.5). */
#define ADMIN_TYPE 0
#define USER_TYPE 1
#define DEV_ABSENT_STATE 0
#define DEV_PRESENT_STATE 1
#define DEV_UNKNOW_STATE 2
#define CONTAINER_EMPTY 0
#define CONTAINER_RSA 1
#define CONTAINER_SM2 2

/* WaitForDevEvent events. 0 is what a cancelled wait reports. */
#define SKF_EVENT_NONE 0
#define SKF_EVENT_INSERTED 1
#define SKF_EVENT_REMOVED 2

/* Algorithm identifiers, GM/T 0016 6.1 numbering (research 1.5). */
#define SGD_SM1_ECB 0x00000101
#define SGD_SMS4_ECB 0x00000401
#define SGD_RSA 0x00010000
#define SGD_SM2_1 0x00020100
#define SGD_SM2_2 0x00020200
#define SGD_SM2_3 0x00020400
#define SGD_SM3 0x00000001
#define SGD_SHA1 0x00000002
#define SGD_SHA256 0x00000004

/* Error codes, GM/T 0016 Appendix A (research 1.6). */
#define SAR_OK 0x00000000
#define SAR_FAIL 0x0A000001
#define SAR_UNKNOWNERR 0x0A000002
#define SAR_NOTSUPPORTYETERR 0x0A000003
#define SAR_FILEERR 0x0A000004
#define SAR_INVALIDHANDLEERR 0x0A000005
#define SAR_INVALIDPARAMERR 0x0A000006
#define SAR_READFILEERR 0x0A000007
#define SAR_WRITEFILEERR 0x0A000008
#define SAR_NAMELENERR 0x0A000009
#define SAR_KEYUSAGEERR 0x0A00000A
#define SAR_MODULUSLENERR 0x0A00000B
#define SAR_NOTINITIALIZEERR 0x0A00000C
#define SAR_OBJERR 0x0A00000D
#define SAR_MEMORYERR 0x0A00000E
#define SAR_TIMEOUTERR 0x0A00000F
#define SAR_INDATALENERR 0x0A000010
#define SAR_INDATAERR 0x0A000011
#define SAR_GENRANDERR 0x0A000012
#define SAR_KEYNOTFOUNTERR 0x0A00001B
#define SAR_CERTNOTFOUNTERR 0x0A00001C
#define SAR_BUFFER_TOO_SMALL 0x0A000020
#define SAR_KEYINFOTYPEERR 0x0A000021
#define SAR_NOT_EVENTERR 0x0A000022
#define SAR_DEVICE_REMOVED 0x0A000023
#define SAR_PIN_INCORRECT 0x0A000024
#define SAR_PIN_LOCKED 0x0A000025
#define SAR_PIN_INVALID 0x0A000026
#define SAR_PIN_LEN_RANGE 0x0A000027
#define SAR_USER_ALREADY_LOGGED_IN 0x0A000028
#define SAR_USER_PIN_NOT_INITIALIZED 0x0A000029
#define SAR_USER_TYPE_INVALID 0x0A00002A
#define SAR_APPLICATION_NAME_INVALID 0x0A00002B
#define SAR_APPLICATION_EXISTS 0x0A00002C
#define SAR_USER_NOT_LOGGED_IN 0x0A00002D
#define SAR_APPLICATION_NOT_EXISTS 0x0A00002E

#ifndef SKF_EXPORT
#define SKF_EXPORT
#endif

SKF_EXPORT ULONG SKF_WaitForDevEvent(LPSTR szDevName, ULONG *pulDevNameLen, ULONG *pulEvent);
SKF_EXPORT ULONG SKF_CancelWaitForDevEvent(void);
SKF_EXPORT ULONG SKF_EnumDev(BOOL bPresent, LPSTR szNameList, ULONG *pulSize);
SKF_EXPORT ULONG SKF_ConnectDev(LPSTR szName, DEVHANDLE *phDev);
SKF_EXPORT ULONG SKF_DisConnectDev(DEVHANDLE hDev);
SKF_EXPORT ULONG SKF_GetDevState(LPSTR szDevName, ULONG *pulDevState);
SKF_EXPORT ULONG SKF_GetDevInfo(DEVHANDLE hDev, DEVINFO *pDevInfo);
SKF_EXPORT ULONG SKF_LockDev(DEVHANDLE hDev, ULONG ulTimeOut);
SKF_EXPORT ULONG SKF_UnlockDev(DEVHANDLE hDev);
SKF_EXPORT ULONG SKF_EnumApplication(DEVHANDLE hDev, LPSTR szAppName, ULONG *pulSize);
SKF_EXPORT ULONG SKF_OpenApplication(DEVHANDLE hDev, LPSTR szAppName, HAPPLICATION *phApplication);
SKF_EXPORT ULONG SKF_CloseApplication(HAPPLICATION hApplication);
SKF_EXPORT ULONG SKF_GetPINInfo(HAPPLICATION hApplication, ULONG ulPINType, ULONG *pulMaxRetryCount,
                                ULONG *pulRemainRetryCount, BOOL *pbDefaultPin);
SKF_EXPORT ULONG SKF_VerifyPIN(HAPPLICATION hApplication, ULONG ulPINType, LPSTR szPIN, ULONG *pulRetryCount);
SKF_EXPORT ULONG SKF_ChangePIN(HAPPLICATION hApplication, ULONG ulPINType, LPSTR szOldPin, LPSTR szNewPin,
                               ULONG *pulRetryCount);
SKF_EXPORT ULONG SKF_UnblockPIN(HAPPLICATION hApplication, LPSTR szAdminPIN, LPSTR szNewUserPIN,
                                ULONG *pulRetryCount);
SKF_EXPORT ULONG SKF_ClearSecureState(HAPPLICATION hApplication);
SKF_EXPORT ULONG SKF_EnumContainer(HAPPLICATION hApplication, LPSTR szContainerName, ULONG *pulSize);
SKF_EXPORT ULONG SKF_OpenContainer(HAPPLICATION hApplication, LPSTR szContainerName, HCONTAINER *phContainer);
SKF_EXPORT ULONG SKF_CloseContainer(HCONTAINER hContainer);
SKF_EXPORT ULONG SKF_GetContainerType(HCONTAINER hContainer, ULONG *pulContainerType);
SKF_EXPORT ULONG SKF_ExportCertificate(HCONTAINER hContainer, BOOL bSignFlag, BYTE *pbCert, ULONG *pulCertLen);
SKF_EXPORT ULONG SKF_ExportPublicKey(HCONTAINER hContainer, BOOL bSignFlag, BYTE *pbBlob, ULONG *pulBlobLen);
SKF_EXPORT ULONG SKF_ECCSignData(HCONTAINER hContainer, BYTE *pbData, ULONG ulDataLen, ECCSIGNATUREBLOB *pSignature);
SKF_EXPORT ULONG SKF_RSASignData(HCONTAINER hContainer, BYTE *pbData, ULONG ulDataLen, BYTE *pbSignature,
                                 ULONG *pulSignLen);
SKF_EXPORT ULONG SKF_GenRandom(DEVHANDLE hDev, BYTE *pbRandom, ULONG ulRandomLen);

#endif
