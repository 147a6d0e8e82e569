/*
 * SafeEngine-shaped facade (SHECA's SafeEngineCOM.SafeEngineCtl ActiveX)
 * over ukey-agent, issue 15. An old page changes only its include:
 *   <script>window.UKEY_AGENT = {base: "https://127.0.0.1:27443"};</script>  (optional)
 *   <script src="/sdk/legacy/safeengine.js"></script>
 * and keeps `SafeEngineCtl.ESE_...()` / `document.getElementById("SafeEngineCtl")`
 * (an <object id="SafeEngineCtl"> left in the page gets the methods on load).
 * Every ESE_X has a twin ESE_XAsync returning a Promise. Types:
 * safeengine.d.ts. Guide and error codes: docs/MIGRATION.md.
 */
(function (global) {
  "use strict";

  /* Agent error code -> the old control's ErrorCode (0x8205xxxx range). */
  var CODES = {
    PIN_INCORRECT: -2113601535,        /* 密码错误 (the old control's value) */
    PIN_FORMAT: -2113601477,           /* pin码错误 (the old control's value) */
    PIN_BLOCKED: -2113601534,
    PIN_LAST_ATTEMPT: -2113601533,
    PIN_TOO_SOON: -2113601532,
    PIN_ENTRY_IN_AGENT_WINDOW: -2113601531,
    TOKEN_NOT_FOUND: -2113601530,
    CERT_NOT_FOUND: -2113601529,
    SIGN_NOT_ALLOWED: -2113601528,
    AGENT_UNREACHABLE: -2113601527,
    POPUP_BLOCKED: -2113601524,
    USER_CANCELLED: -2113601523,
    CONSENT_REPLACED: -2113601523,     /* a newer call of the page took the agent's window over */
    NO_SESSION: -2113601526,
    BAD_ARGUMENT: -2113601525,
    OTHER: -2113601520
  };

  function create(L) {
    var pin = null, entry = null;
    var ctl = { ErrorCode: 0, PinRetries: -1, ErrorName: "", CODES: CODES };

    function fail(e) {
      var code = e instanceof L.AgentError ? e.code : "BAD_ARGUMENT";
      ctl.ErrorName = code;
      ctl.ErrorCode = CODES[code] || CODES.OTHER;
      if (e && e.details && typeof e.details.retries_left === "number") ctl.PinRetries = e.details.retries_left;
      return ctl.ErrorCode;
    }
    /* Sync: old return value, errors in ErrorCode; Async: rejects with it. */
    var method = L.definer(ctl, function () { ctl.ErrorCode = 0; ctl.ErrorName = ""; }, fail);
    function needSession() {
      if (pin === null) throw new L.AgentError("NO_SESSION");
    }

    /* devType/devName are accepted as the old control had them (36, "com1"):
     * the agent picks the token that holds a certificate. The PIN is checked
     * at once (page mode) and then kept here only. */
    method("ESE_InitialSession", -1, function (sync, a) {
      var p = String(a[2] === undefined ? "" : a[2]);
      return L.then(L.certificates(sync), function (list) {
        var e = L.findCert(list, "");
        return L.then(L.pinVerify(e, p, sync), function (r) {
          pin = r.consent ? "" : p; entry = e;
          ctl.PinRetries = r.pin && typeof r.pin.retries_left === "number" ? r.pin.retries_left : -1;
          return 0;
        });
      });
    });
    method("ESE_ClearSession", -1, function () {
      pin = null; entry = null;
      return 0;
    });
    /* JSON list as the old control gave it: [{devType, devName, cert, CN, SN}] */
    method("ESE_ListCertInPlugDevice", "", function (sync) {
      return L.then(L.certificates(sync), function (list) {
        return JSON.stringify(list.map(function (x) {
          return { devType: 36, devName: x.certId, cert: x.cert.der, CN: x.cert.subject_cn, SN: x.cert.serial };
        }));
      });
    });
    method("ESE_GetSelfCertificate", "", function (sync) {
      if (entry) return entry.cert.der;
      return L.then(L.certificates(sync), function (list) { return L.findCert(list, "").cert.der; });
    });
    method("ESE_GetCertDetail", "", function (sync, a) { return L.certInfo(a[0], a[1]); });
    method("ESE_GetCertInfoByOID", "", function (sync, a) { return L.certInfoByOid(a[0], a[1]); });
    /* Raw signature (Base64) of the text with the session's certificate and PIN. */
    method("ESE_SignData", "", function (sync, a) {
      needSession();
      return L.sign(entry, pin, a[0], "raw", sync);
    });
    return ctl;
  }

  /* Loads common.js (and ukey-agent.js) while the page is parsed, then
   * builds the object: scripts written here run before the page's next one. */
  function install() {
    var ctl = create(global.UKeyLegacy);
    function attach(el) {
      Object.keys(ctl).forEach(function (k) {
        if (k === "ErrorCode" || k === "PinRetries" || k === "ErrorName")
          Object.defineProperty(el, k, { get: function () { return ctl[k]; }, configurable: true });
        else el[k] = ctl[k];
      });
    }
    var doc = global.document;
    var el = doc && doc.getElementById("SafeEngineCtl");
    if (el) attach(el);
    else if (doc) doc.addEventListener("DOMContentLoaded", function () {
      var later = doc.getElementById("SafeEngineCtl");
      if (later) attach(later);
    });
    global.SafeEngineCtl = el || ctl;
    if (global.addEventListener) global.addEventListener("pagehide", function () { ctl.ESE_ClearSession(); });
    return global.SafeEngineCtl;
  }
  global.SafeEngineFacade = { create: create, CODES: CODES };
  /* Page: loads ukey-agent.js and common.js right after this script (they
   * run before the page's next script), and common.js calls install. */
  if (global.UKeyLegacy) install();
  else if (global.document) {
    (global.UKeyLegacyPending = global.UKeyLegacyPending || []).push(install);
    var dir = (global.document.currentScript ? global.document.currentScript.src : "/sdk/legacy/").replace(/[^/]*$/, "");
    global.document.write('<script src="' + dir + '../ukey-agent.js"></script><script src="' + dir + 'common.js"></script>');
  }
})(typeof globalThis !== "undefined" ? globalThis : window);
