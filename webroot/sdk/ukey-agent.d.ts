// Types of the ukey-agent SDK (ukey-agent.js as window.UKeyAgent, or ukey-agent.mjs).

export type Lang = "zh-CN" | "en";
export type Messages = { "zh-CN": string; en: string };

/** Stable codes: every code of docs/API.md, and the SDK's own three. */
export type ErrorCode =
  | "AGENT_UNREACHABLE" | "TIMEOUT" | "BLOCKED_BY_BROWSER" | "POPUP_BLOCKED"
  | "INTERNAL_ERROR" | "OUT_OF_MEMORY" | "NOT_FOUND" | "METHOD_NOT_ALLOWED" | "HOST_NOT_ALLOWED"
  | "ORIGIN_NOT_ALLOWED" | "INVALID_REQUEST" | "UNSUPPORTED_MEDIA_TYPE" | "BODY_TOO_LARGE" | "INVALID_JSON"
  | "PCSC_UNAVAILABLE" | "TOKEN_NOT_FOUND" | "TOKEN_REMOVED" | "TOKEN_BUSY" | "TOKEN_NOT_SUPPORTED"
  | "CARD_DATA_INVALID" | "CARD_ERROR" | "PIN_FORMAT" | "PIN_INCORRECT" | "PIN_LAST_ATTEMPT" | "PIN_BLOCKED"
  | "PUK_INCORRECT" | "PUK_BLOCKED" | "CHALLENGE_INVALID" | "CERT_NOT_FOUND" | "PIN_REQUIRED"
  | "ORIGIN_REQUIRED" | "CERTIFICATE_INVALID" | "AGENT_BUSY" | "PIN_ENTRY_IN_AGENT_WINDOW"
  | "CONSENT_NOT_FOUND" | "USER_CANCELLED" | "CONSENT_TIMEOUT"
  | "PUK_LAST_ATTEMPT" | "PIN_TOO_SOON" | "CONSENT_REPLACED" | "ORIGIN_BUSY"
  | "SIGN_NOT_ALLOWED" | "DATA_INVALID" | "ALGORITHM_MISMATCH";

export declare class UKeyAgentError extends Error {
  readonly name: "UKeyAgentError";
  readonly code: ErrorCode | string;
  readonly messages: Messages;
  /** The HTTP status of the agent's answer; 0 when there was none. */
  readonly status: number;
  /** Extra members of the error envelope, e.g. { retries_left: 2 }; retry_after_ms:
   * the pause before the next PIN operation on the token (after a wrong PIN or PUK). */
  readonly details: { retries_left?: number; retry_after_ms?: number;
                      /** Certificate and PIN errors of a token whose issuer has a deployment profile: where to get help. */
                      help?: { name?: string; phone?: string; url?: string }; [key: string]: unknown };
  messageIn(lang: Lang): string;
}

export interface Detection {
  state: "running" | "untrusted-certificate" | "not-running" | "blocked-by-browser";
  version: string | null;
  /** The agent's own help and diagnostic page. */
  helpUrl: string;
  status?: AgentStatus;
  probe?: { name: string; version: string; https_port: number; ca_fingerprint_sha256: string };
  /** What to tell the user when the state is not "running". */
  error?: UKeyAgentError;
}

export interface AgentStatus {
  name: string; version: string; protocol: string; api: string;
  pcsc: { available: boolean; error?: string; detail?: string };
  readers: number; cards: number;
  /** Where this site's users type the PIN: authenticate({mode: pin_entry}). */
  pin_entry?: "consent" | "page";
}

export interface Certificate {
  id: string; slot: string; authentication: boolean; pin_required: boolean;
  subject: string; subject_cn?: string; issuer: string; serial: string;
  not_before: string; not_after: string; key_type: "EC" | "RSA"; key_size: number;
  key_usage: string[]; ext_key_usage: string[]; der: string;
}

export interface Token {
  id: string; reader: string; type: string; label: string; serial: string;
  pin: {
    retries_left: number | null;
    retries_low: boolean;
    blocked: boolean;
    pin_pad: boolean;
    digits_only: boolean;
    min_length: number;
    max_length: number;
    /** The pause still to wait after a wrong PIN or PUK, 0 when none. */
    retry_after_ms: number;
  };
  /** The unblocking secret (PIV PUK, OpenPGP Resetting Code, PKCS#11 SO PIN, SKF admin PIN). */
  puk: { retries_left: number | null; retries_low: boolean; blocked: boolean };
  certificates: Certificate[];
}

export interface Reader {
  name: string; state: "empty" | "present" | "unresponsive" | "in_use"; atr?: string; token?: string;
  error?: { code: string; "zh-CN": string; en: string };
}

export interface TokenList { pcsc: { available: boolean }; readers: Reader[]; tokens: Token[] }

/** The Web eID authentication token, for the portal's back end as it is. */
export interface AuthToken {
  unverifiedCertificate: string; algorithm: "ES256" | "ES384" | "RS256" | "PS256" | string;
  signature: string; format: "web-eid:1.0"; appVersion: string;
}

export interface TokenEvent {
  type: "reader-added" | "reader-removed" | "token-inserted" | "token-removed";
  reader?: string; token?: string | null;
}

export interface Settings { base: string; probe: string; timeout: number; lang: Lang | null }

export declare function configure(options: Partial<Settings>): Settings;
export declare function detect(options?: {
  timeout?: number;
  /** Awaited before the browser shows its Local Network Access prompt. */
  onPermissionPrompt?: (text: string, messages: Messages) => void | Promise<void>;
}): Promise<Detection>;
export declare function permissionState(): Promise<"granted" | "prompt" | "denied" | "unknown">;
export declare function listTokens(options?: { timeout?: number }): Promise<TokenList>;
export declare function onTokenChange(callback: (event: TokenEvent) => void): () => void;
export declare function verifyPin(token: string, pin: string,
  options?: { confirmLastAttempt?: boolean; timeout?: number }):
  Promise<{ verified: true; pin: { retries_left: number | null; blocked: boolean };
            puk: { retries_left: number | null; blocked: boolean } }>;
export declare function authenticate(challenge: string, options: {
  /** "consent": the PIN is typed in the agent's own window (call from a click; a newer consent call of the page
   *  replaces one in progress, which rejects with CONSENT_REPLACED); "page": send options.pin. */
  mode?: "consent" | "page";
  pin?: string; token?: string; certificate?: string; algorithm?: "PS256";
  confirmLastAttempt?: boolean; timeout?: number;
}): Promise<AuthToken>;
/** The answer of sign(): the signature and the certificate that made it. */
export interface DataSignature {
  format: "raw" | "cms" | "cms-attached";
  algorithm: "SM3withSM2" | "SHA256withRSA" | "SHA256withECDSA" | "SHA384withECDSA";
  /** Base64: the raw signature (RSA PKCS#1 v1.5; ECDSA/SM2 DER SEQUENCE {r, s}) or the DER CMS ContentInfo. */
  signature: string;
  /** Base64 DER of the signing certificate. */
  certificate: string;
  token: string; certificate_id: string;
}
/** Signs data (only for sites configured with "legacy_sign": true; not bound to the site). A string is
 * signed as its UTF-8 bytes (or, with encoding "base64", is the Base64 of the bytes); bytes are sent as Base64. */
export declare function sign(data: string | Uint8Array | ArrayBuffer, options: {
  mode?: "consent" | "page";
  pin?: string; token?: string; certificate?: string;
  algorithm?: "SM3withSM2" | "SHA256withRSA" | "SHA256withECDSA" | "SHA384withECDSA";
  format?: "raw" | "cms" | "cms-attached"; encoding?: "text" | "base64";
  confirmLastAttempt?: boolean; timeout?: number;
}): Promise<DataSignature>;
export declare function language(): Lang;

declare const UKeyAgent: {
  configure: typeof configure; detect: typeof detect; permissionState: typeof permissionState;
  listTokens: typeof listTokens; onTokenChange: typeof onTokenChange; verifyPin: typeof verifyPin;
  authenticate: typeof authenticate; sign: typeof sign; language: typeof language; UKeyAgentError: typeof UKeyAgentError;
};
export default UKeyAgent;

declare global {
  interface Window { UKeyAgent: typeof UKeyAgent }
}
