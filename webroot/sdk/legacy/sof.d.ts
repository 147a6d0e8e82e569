/* Types of the SOF-shaped facade (sof.js, issue 15). Each SOF_X is also a
 * bare global; each has a twin SOF_XAsync returning a Promise of the same
 * value that rejects with the SOF_GetLastError() number.
 * Guide and codes: docs/MIGRATION.md. */
import type { CertInfoType } from "./safeengine";

export interface SOFErrorCodes {
  SOR_OK: 0; SOR_UnknownErr: 0x0B000001; SOR_NotSupportYetErr: 0x0B000002; SOR_IndataErr: 0x0B000201;
  SOR_PinErr: 0x0B000101; SOR_PinLockedErr: 0x0B000102; SOR_PinLastAttemptErr: 0x0B000103;
  SOR_PinTooSoonErr: 0x0B000104; SOR_PinInAgentWindowErr: 0x0B000105; SOR_NoDeviceErr: 0x0B000106;
  SOR_CertNotFoundErr: 0x0B000107; SOR_NotLoginErr: 0x0B000108; SOR_SignNotAllowedErr: 0x0B000109;
  SOR_AgentUnreachableErr: 0x0B00010A; SOR_CancelledErr: 0x0B00010B;
}

type Twin<F extends (...a: any[]) => any> = (...a: Parameters<F>) => Promise<ReturnType<F>>;

export interface SOFSync {
  SOF_GetVersion(): string;
  SOF_SetSignMethod(method: number): number;
  SOF_GetSignMethod(): number;
  SOF_SetEncryptMethod(method: number): number;
  SOF_GetEncryptMethod(): number;
  /** "name||CertID&&&name||CertID&&&"; CertID is "<token id>/<certificate id>". */
  SOF_GetUserList(): string;
  SOF_ExportUserCert(certId: string): string;
  SOF_ExportExChangeUserCert(certId: string): string;
  /** Checks the PIN (page mode); keeps it in the page until SOF_Logout. */
  SOF_Login(certId: string, pin: string): boolean;
  SOF_Logout(certId: string): boolean;
  SOF_IsLogin(certId: string): boolean;
  /** Tries left, -1 when the token does not tell or on error. */
  SOF_GetPinRetryCount(certId: string): number;
  SOF_ChangePassWd(certId: string, oldPin: string, newPin: string): boolean;
  SOF_GetCertInfo(cert: string, type: CertInfoType): string;
  SOF_GetCertInfoByOid(cert: string, oid: string): string;
  /** Base64 raw signature of the text's UTF-8 bytes. */
  SOF_SignData(certId: string, data: string): string;
  /** Base64 PKCS#7 SignedData: flag 0 attached, 1 detached. */
  SOF_SignMessage(flag: 0 | 1, certId: string, data: string): string;
  /** Not supported (false, SOR_NotSupportYetErr): the server verifies. */
  SOF_VerifySignedData(cert: string, data: string, signature: string): boolean;
  SOF_VerifySignedMessage(message: string, data: string): boolean;
  SOF_GenRandom(length: number): string;
}

export type SOF = SOFSync & { [K in keyof SOFSync as `${K}Async`]: Twin<SOFSync[K]> } & {
  SOF_GetLastError(): number;
  /** Drops every PIN (also done on page unload). */
  clearAll(): void;
  readonly CODES: SOFErrorCodes;
};

declare global {
  var SOF: SOF;
  var SOF_GetLastError: () => number;
  var SOF_GetUserList: SOFSync["SOF_GetUserList"];
  var SOF_ExportUserCert: SOFSync["SOF_ExportUserCert"];
  var SOF_Login: SOFSync["SOF_Login"];
  var SOF_Logout: SOFSync["SOF_Logout"];
  var SOF_GetPinRetryCount: SOFSync["SOF_GetPinRetryCount"];
  var SOF_GetCertInfo: SOFSync["SOF_GetCertInfo"];
  var SOF_SignData: SOFSync["SOF_SignData"];
  var SOF_SignMessage: SOFSync["SOF_SignMessage"];
}
