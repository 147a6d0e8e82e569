/*
 * Unit test of the legacy facades (issue 15): the DER reader and the old
 * GetCertInfo / GetCertDetail type numbers on the repository's RSA, P-256
 * and SM2 test certificates (checked against openssl's view of the same
 * files), the SOF user list, and both facades' sync and Async calls over a
 * fake agent (fake XMLHttpRequest and fetch): PIN kept until logout, wrong PIN ->
 * ErrorCode / SOF_GetLastError, sign requests as the contract says.
 * Run: node tests/unit/test_legacy_facades.js (ctest unit.test_legacy_facades).
 */
"use strict";
const assert = require("assert");
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");

const root = path.resolve(__dirname, "../..");
const sdk = path.join(root, "webroot/sdk/legacy");
const corpus = path.join(root, "tests/fuzz/corpus/cert");

/* Fake agent: one token with two certificates; PIN 123456. */
const sent = [];
let consentMode = false, pivFirst = false, polls = 0;
function agent(method, url, body) {
  sent.push({ method, url, body });
  const u = url.replace(/^https:\/\/127\.0\.0\.1:27443/, "");
  if (consentMode) {
    if (body && body.pin !== undefined) return [403, { error: { code: "PIN_ENTRY_IN_AGENT_WINDOW" } }];
    if (u === "/api/v1/sign" && body.consent === true)
      return [202, { request: "c1", consent_url: "https://127.0.0.1:27443/consent/c1", expires_in: 120 }];
    if (u === "/api/v1/sign/c1")
      return ++polls < 2 ? [200, { state: "pending" }] : [200, { format: "raw", signature: "Q09OUw==" }];
  }
  if (method === "GET" && u === "/api/v1/tokens") return [200, { tokens: pivFirst ? [PIV, TOKEN] : [TOKEN] }];
  if (u === "/api/v1/tokens/skf-1/pin/verify")
    return body.pin === "123456" ? [200, { verified: true, pin: { retries_left: 6 } }]
      : [403, { error: { code: "PIN_INCORRECT", retries_left: 5 } }];
  if (u === "/api/v1/sign")
    return body.pin === "123456" ? [200, { format: body.format, signature: "U0lH" }]
      : [403, { error: { code: "PIN_INCORRECT", retries_left: 4 } }];
  return [404, { error: { code: "NOT_FOUND" } }];
}
/* The SDK's fetch (the Async twins' consent flow runs through ukey-agent.js). */
global.fetch = async (url, init) => {
  const [status, json] = agent(init.method, url, init.body === undefined ? undefined : JSON.parse(init.body));
  return { ok: status >= 200 && status < 300, status, json: async () => json };
};
global.XMLHttpRequest = class {
  open(m, u, async) { this.m = m; this.u = u; this.async = async; }
  setRequestHeader(k, v) { assert.strictEqual(k + v, "Content-Typeapplication/json"); }
  send(b) {
    const [status, json] = agent(this.m, this.u, b === null ? undefined : JSON.parse(b));
    this.status = status;
    this.responseText = JSON.stringify(json);
    if (this.async) setTimeout(() => this.onload(), 0);
  }
};

const der = (n) => fs.readFileSync(path.join(corpus, n + ".der")).toString("base64");
const TOKEN = {
  id: "skf-1", pin: { retries_left: 6 },
  certificates: [
    { id: "sign", authentication: true, subject_cn: "测试用户 sm2", der: der("sm2") },
    { id: "enc", authentication: false, subject_cn: "测试用户 sm2", der: der("es256") }
  ]
};
TOKEN.certificates[0].key_type = "SM2";
TOKEN.certificates[1].key_type = "EC";
/* A PIV card listed before the SKF token. */
const PIV = {
  id: "piv-1", pin: { retries_left: 3 },
  certificates: [
    { id: "9c", authentication: false, key_type: "EC", subject_cn: "piv sign", der: der("es384") },
    { id: "9a", authentication: true, key_type: "EC", subject_cn: "piv auth", der: der("es256") }
  ]
};

require(path.join(sdk, "../ukey-agent.js"));
require(path.join(sdk, "common.js"));
require(path.join(sdk, "safeengine.js"));
require(path.join(sdk, "sof.js"));
const L = global.UKeyLegacy;

/* openssl's view of a certificate, to check the DER reader against. */
function openssl(file, ...opts) {
  return execFileSync("openssl", ["x509", "-inform", "DER", "-in", file, "-noout", ...opts,
                                  "-nameopt", "utf8,sep_comma_plus_space,-esc_msb"]).toString().trim();
}
function stamp(s) {   /* "Nov 24 20:06:03 2026 GMT" -> YYYYMMDDHHMMSS */
  const d = new Date(s.replace(/^\w+=/, ""));
  return d.toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

for (const [name, keyType] of [["rs256", "rsa"], ["es256", "ecc"], ["es384", "ecc"], ["sm2", "sm2"]]) {
  const file = path.join(corpus, name + ".der"), cert = der(name);
  const serial = openssl(file, "-serial").replace(/^serial=/, "");
  assert.strictEqual(L.certInfo(cert, 2), serial.replace(/^0+(?=.)/, ""), name + " serial");
  assert.strictEqual(L.certInfo(cert, 1), "V3");
  assert.strictEqual(L.certInfo(cert, 3), keyType, name + " key type");
  assert.strictEqual(L.certInfo(cert, 11), stamp(openssl(file, "-startdate")));
  assert.strictEqual(L.certInfo(cert, 12), stamp(openssl(file, "-enddate")));
  const subject = openssl(file, "-subject").replace(/^subject=/, "");
  const issuer = openssl(file, "-issuer").replace(/^issuer=/, "");
  assert.strictEqual(L.certInfo(cert, 33), subject, name + " subject DN");
  assert.strictEqual(L.certInfo(cert, 34), issuer, name + " issuer DN");
  assert.strictEqual(L.certInfo(cert, 17), /CN=([^,]*)/.exec(subject)[1]);
  assert.strictEqual(L.certInfo(cert, 8), /CN=([^,]*)/.exec(issuer)[1]);
  assert.ok(L.certInfo(cert, 20).length > 40);
  assert.strictEqual(L.certInfoByOid(cert, "2.5.4.3"), L.certInfo(cert, 17));
  assert.strictEqual(L.certInfoByOid(cert, "1.2.156.112570.148"), "");
  /* Same numbers through both facades. */
  assert.strictEqual(SafeEngineCtl.ESE_GetCertDetail(cert, 17), L.certInfo(cert, 17));
  assert.strictEqual(SOF_GetCertInfo(cert, 2), serial.replace(/^0+(?=.)/, ""));
}
/* An extension by OID: the CDP's DER as hex (sm2-cdp-aia has one). */
assert.match(L.certInfoByOid(der("sm2-cdp-aia"), "2.5.29.31"), /^30[0-9A-F]+$/);
/* Bad input: "" and an error code, never a throw. */
assert.strictEqual(SOF_GetCertInfo("AAAA", 2), "");
assert.strictEqual(SOF_GetLastError(), SOF.CODES.SOR_IndataErr);
assert.strictEqual(SOF_GetCertInfo(der("sm2"), 99), "");
assert.strictEqual(SafeEngineCtl.ESE_GetCertDetail("@@", 2), "");
assert.strictEqual(SafeEngineCtl.ErrorCode, SafeEngineCtl.CODES.BAD_ARGUMENT);

/* SOF: user list, login, sign, logout. */
assert.strictEqual(SOF_GetUserList(), "测试用户 sm2||skf-1/sign&&&测试用户 sm2||skf-1/enc&&&");
assert.strictEqual(SOF_ExportUserCert("skf-1/sign"), der("sm2"));
assert.strictEqual(SOF_ExportExChangeUserCert("skf-1/sign"), der("es256"));
assert.strictEqual(SOF_GetPinRetryCount("skf-1/sign"), 6);
assert.strictEqual(SOF_SignData("skf-1/sign", "r"), "");
assert.strictEqual(SOF_GetLastError(), SOF.CODES.SOR_NotLoginErr);
assert.strictEqual(SOF_Login("skf-1/sign", "000000"), false);
assert.strictEqual(SOF_GetLastError(), SOF.CODES.SOR_PinErr);
assert.strictEqual(SOF_Login("skf-1/sign", "123456"), true);
assert.strictEqual(SOF_GetLastError(), 0);
assert.strictEqual(SOF_SignData("skf-1/sign", "rand"), "U0lH");
assert.deepStrictEqual(sent[sent.length - 1].body,
  { data: "rand", format: "raw", token: "skf-1", certificate: "sign", pin: "123456" });
SOF_SignMessage(0, "skf-1/sign", "x");
assert.strictEqual(sent[sent.length - 1].body.format, "cms-attached");
SOF_SignMessage(1, "skf-1/sign", "x");
assert.strictEqual(sent[sent.length - 1].body.format, "cms");
assert.strictEqual(SOF_VerifySignedData(der("sm2"), "x", "U0lH"), false);
assert.strictEqual(SOF_GetLastError(), SOF.CODES.SOR_NotSupportYetErr);
assert.strictEqual(Buffer.from(SOF_GenRandom(24), "base64").length, 24);
assert.strictEqual(SOF_Logout("skf-1/sign"), true);
assert.strictEqual(SOF_SignData("skf-1/sign", "r"), "");
assert.strictEqual(SOF_GetLastError(), SOF.CODES.SOR_NotLoginErr);

/* SafeEngine: the old SHECA sequence. */
const ctl = SafeEngineCtl;
assert.strictEqual(ctl.ESE_SignData("r", "SM3withSM2"), "");
assert.strictEqual(ctl.ErrorCode, ctl.CODES.NO_SESSION);
ctl.ESE_InitialSession(36, "com1", "111111", 0, 36, "com1", "");
assert.strictEqual(ctl.ErrorCode, -2113601535);
assert.strictEqual(ctl.PinRetries, 5);
ctl.ESE_InitialSession(36, "com1", "123456", 0, 36, "com1", "");
assert.strictEqual(ctl.ErrorCode, 0);
assert.strictEqual(ctl.ESE_GetSelfCertificate(36, "com1"), der("sm2"));
assert.strictEqual(JSON.parse(ctl.ESE_ListCertInPlugDevice(3))[0].CN, "测试用户 sm2");
assert.strictEqual(ctl.ESE_SignData("rand", "SM3withSM2"), "U0lH");
assert.strictEqual(sent[sent.length - 1].body.pin, "123456");
ctl.ESE_ClearSession();
assert.strictEqual(ctl.ESE_SignData("rand", "SM3withSM2"), "");
assert.strictEqual(ctl.ErrorCode, ctl.CODES.NO_SESSION);

/* Several tokens: the old clients' order (authentication, then SM2 first),
 * whatever order the agent lists them in. */
pivFirst = true;
assert.strictEqual(SOF_GetUserList(), "测试用户 sm2||skf-1/sign&&&piv auth||piv-1/9a&&&" +
                   "piv sign||piv-1/9c&&&测试用户 sm2||skf-1/enc&&&");
assert.strictEqual(ctl.ESE_GetSelfCertificate(36, "com1"), der("sm2"));
assert.strictEqual(SOF_ExportUserCert("piv-1/9a"), der("es256"));
pivFirst = false;

/* Async twins: same answers, errors as rejections with the code. */
(async () => {
  assert.strictEqual(await SOF.SOF_GetUserListAsync(), SOF_GetUserList());
  await assert.rejects(SOF.SOF_LoginAsync("skf-1/sign", "0"), (c) => c === SOF.CODES.SOR_PinErr);
  assert.strictEqual(await ctl.ESE_InitialSessionAsync(36, "com1", "123456"), 0);
  assert.strictEqual(await ctl.ESE_SignDataAsync("x", "SM3withSM2"), "U0lH");
  assert.strictEqual(sent.filter((s) => s.url.endsWith("/api/v1/sign")).length > 0, true);
  await assert.rejects(ctl.ESE_InitialSessionAsync(36, "com1", "9"), (c) => c === -2113601535);
  /* Consent-mode origin: sync calls needing the PIN say so; the Async
   * twins open the agent's window and poll for the answer. */
  consentMode = true;
  const opened = [];
  global.open = () => { const w = { location: {}, closed: false, close() { this.closed = true; } }; opened.push(w); return w; };
  ctl.ESE_InitialSession(36, "com1", "123456");
  assert.strictEqual(ctl.ErrorCode, ctl.CODES.PIN_ENTRY_IN_AGENT_WINDOW);
  assert.strictEqual(SOF_Login("skf-1/sign", "123456"), false);
  assert.strictEqual(SOF_GetLastError(), SOF.CODES.SOR_PinInAgentWindowErr);
  assert.strictEqual(await SOF.SOF_LoginAsync("skf-1/sign", "123456"), true);
  assert.strictEqual(SOF_SignData("skf-1/sign", "x"), "");
  assert.strictEqual(SOF_GetLastError(), SOF.CODES.SOR_PinInAgentWindowErr);
  assert.strictEqual(await SOF.SOF_SignDataAsync("skf-1/sign", "x"), "Q09OUw==");
  assert.strictEqual(opened.length, 1);
  assert.strictEqual(opened[0].location.href, "https://127.0.0.1:27443/consent/c1");
  assert.ok(!opened[0].closed);  /* the agent's page closes itself once confirmed */
  assert.strictEqual(sent.filter((x) => x.body && x.body.consent).every((x) => !("pin" in x.body)), true);
  console.log("legacy facades: all checks passed");
})().catch((e) => { console.error(e); process.exit(1); });
