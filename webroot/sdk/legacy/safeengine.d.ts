/* Types of the SafeEngine-shaped facade (safeengine.js, issue 15).
 * Every method has a twin `<name>Async` returning a Promise of the same
 * value that rejects with the ErrorCode number. Guide: docs/MIGRATION.md. */

export interface SafeEngineErrorCodes {
  PIN_INCORRECT: -2113601535; PIN_FORMAT: -2113601477; PIN_BLOCKED: number; PIN_LAST_ATTEMPT: number;
  PIN_TOO_SOON: number; PIN_ENTRY_IN_AGENT_WINDOW: number; TOKEN_NOT_FOUND: number; CERT_NOT_FOUND: number;
  SIGN_NOT_ALLOWED: number; AGENT_UNREACHABLE: number; POPUP_BLOCKED: number; USER_CANCELLED: number; NO_SESSION: number; BAD_ARGUMENT: number; OTHER: number;
}

/** 1 version "V3", 2 serial (hex), 3 "rsa"|"ecc"|"sm2", 8 issuer CN, 11/12 notBefore/notAfter
 * YYYYMMDDHHMMSS, 17 subject CN, 20 public key (Base64), 33 subject DN, 34 issuer DN,
 * 35 subject serialNumber. */
export type CertInfoType = 1 | 2 | 3 | 8 | 11 | 12 | 17 | 20 | 33 | 34 | 35;

export interface SafeEngineCtl {
  /** 0 after a call that worked, else the code (CODES). */
  readonly ErrorCode: number;
  /** The agent's error code name of the last failure ("" after success). */
  readonly ErrorName: string;
  /** PIN tries left as the last PIN check reported, -1 if unknown. */
  readonly PinRetries: number;
  readonly CODES: SafeEngineErrorCodes;

  /** Checks the PIN on the token (page mode) and keeps it for ESE_SignData. 0 or ErrorCode. */
  ESE_InitialSession(devType: number, devName: string, pin: string, ...rest: unknown[]): number;
  ESE_InitialSessionAsync(devType: number, devName: string, pin: string, ...rest: unknown[]): Promise<number>;
  /** Forgets the PIN. */
  ESE_ClearSession(): number;
  ESE_ClearSessionAsync(): Promise<number>;
  /** JSON text: [{devType: 36, devName, cert, CN, SN}]. */
  ESE_ListCertInPlugDevice(devType?: number): string;
  ESE_ListCertInPlugDeviceAsync(devType?: number): Promise<string>;
  /** Base64 DER of the signing certificate. */
  ESE_GetSelfCertificate(devType?: number, devName?: string): string;
  ESE_GetSelfCertificateAsync(devType?: number, devName?: string): Promise<string>;
  ESE_GetCertDetail(cert: string, type: CertInfoType): string;
  ESE_GetCertDetailAsync(cert: string, type: CertInfoType): Promise<string>;
  /** A subject attribute or extension by OID ("" if absent). */
  ESE_GetCertInfoByOID(cert: string, oid: string): string;
  ESE_GetCertInfoByOIDAsync(cert: string, oid: string): Promise<string>;
  /** Base64 raw signature of the text's UTF-8 bytes (the key's algorithm). */
  ESE_SignData(data: string, algorithm?: string): string;
  ESE_SignDataAsync(data: string, algorithm?: string): Promise<string>;
}

declare global {
  interface Window {
    SafeEngineCtl: SafeEngineCtl;
    UKEY_AGENT?: { base?: string; probe?: string; timeout?: number };
  }
  var SafeEngineCtl: SafeEngineCtl;
}
