/*
 * SOF-shaped facade (GM/T 0020 names as BJCA's 证书应用环境 exposes them)
 * over ukey-agent, issue 15. An old page changes only its include:
 *   <script src="/sdk/legacy/sof.js"></script>
 * and calls SOF.SOF_X(...) or the bare globals SOF_X(...). Every SOF_X has
 * a twin SOF_XAsync returning a Promise. Failures return false / "" / -1
 * and SOF_GetLastError() gives the code (table in docs/MIGRATION.md).
 * Types: sof.d.ts.
 */
(function (global) {
  "use strict";

  /* SOR_* codes: the first four are GM/T 0020's; the rest are the
   * facade's own (0x0B0001xx), one per agent error the page can act on. */
  var CODES = {
    SOR_OK: 0,
    SOR_UnknownErr: 0x0B000001,
    SOR_NotSupportYetErr: 0x0B000002,
    SOR_IndataErr: 0x0B000201,
    SOR_PinErr: 0x0B000101,
    SOR_PinLockedErr: 0x0B000102,
    SOR_PinLastAttemptErr: 0x0B000103,
    SOR_PinTooSoonErr: 0x0B000104,
    SOR_PinInAgentWindowErr: 0x0B000105,
    SOR_NoDeviceErr: 0x0B000106,
    SOR_CertNotFoundErr: 0x0B000107,
    SOR_NotLoginErr: 0x0B000108,
    SOR_SignNotAllowedErr: 0x0B000109,
    SOR_AgentUnreachableErr: 0x0B00010A,
    SOR_CancelledErr: 0x0B00010B
  };
  var FROM_AGENT = {
    PIN_INCORRECT: "SOR_PinErr", PIN_FORMAT: "SOR_PinErr", PIN_BLOCKED: "SOR_PinLockedErr",
    PIN_LAST_ATTEMPT: "SOR_PinLastAttemptErr", PIN_TOO_SOON: "SOR_PinTooSoonErr",
    PIN_ENTRY_IN_AGENT_WINDOW: "SOR_PinInAgentWindowErr", TOKEN_NOT_FOUND: "SOR_NoDeviceErr",
    TOKEN_REMOVED: "SOR_NoDeviceErr", CERT_NOT_FOUND: "SOR_CertNotFoundErr",
    NOT_LOGGED_IN: "SOR_NotLoginErr", SIGN_NOT_ALLOWED: "SOR_SignNotAllowedErr",
    AGENT_UNREACHABLE: "SOR_AgentUnreachableErr", NOT_SUPPORTED: "SOR_NotSupportYetErr",
    DATA_INVALID: "SOR_IndataErr", BAD_ARGUMENT: "SOR_IndataErr",
    USER_CANCELLED: "SOR_CancelledErr", POPUP_BLOCKED: "SOR_CancelledErr", CONSENT_TIMEOUT: "SOR_CancelledErr",
    CONSENT_REPLACED: "SOR_CancelledErr"
  };

  /* "name||CertID&&&..." from the agent's certificate list. */
  function userList(list) {
    return list.map(function (x) {
      return (x.cert.subject_cn || x.cert.subject) + "||" + x.certId + "&&&";
    }).join("");
  }

  function create(L) {
    var lastError = 0, signMethod = 0, encryptMethod = 0;
    var sessions = {};              /* CertID -> PIN, kept here only */
    var sof = { CODES: CODES };

    function fail(e) {
      var code = e instanceof L.AgentError ? e.code : "BAD_ARGUMENT";
      lastError = CODES[FROM_AGENT[code] || "SOR_UnknownErr"];
      return lastError;
    }
    var method = L.definer(sof, function () { lastError = 0; }, fail);
    function entryFor(sync, certId) {
      return L.then(L.certificates(sync), function (list) { return L.findCert(list, String(certId)); });
    }
    function loggedIn(certId) {
      if (!Object.prototype.hasOwnProperty.call(sessions, certId)) throw new L.AgentError("NOT_LOGGED_IN");
      return sessions[certId];
    }
    function retries(r) {
      return r && r.pin && typeof r.pin.retries_left === "number" ? r.pin.retries_left : -1;
    }
    function signWith(sync, certId, data, format) {
      var pin = loggedIn(String(certId));
      return L.then(entryFor(sync, certId), function (e) { return L.sign(e, pin, data, format, sync); });
    }

    method("SOF_GetVersion", "", function () { return "ukey-agent SOF facade 1.0"; });
    method("SOF_SetSignMethod", -1, function (s, a) { signMethod = Number(a[0]); return 0; });
    method("SOF_GetSignMethod", -1, function () { return signMethod; });
    method("SOF_SetEncryptMethod", -1, function (s, a) { encryptMethod = Number(a[0]); return 0; });
    method("SOF_GetEncryptMethod", -1, function () { return encryptMethod; });
    method("SOF_GetUserList", "", function (sync) { return L.then(L.certificates(sync), userList); });
    method("SOF_ExportUserCert", "", function (sync, a) {
      return L.then(entryFor(sync, a[0]), function (e) { return e.cert.der; });
    });
    /* The token's other certificate (the encryption one), or "" and an error. */
    method("SOF_ExportExChangeUserCert", "", function (sync, a) {
      return L.then(L.certificates(sync), function (list) {
        var e = L.findCert(list, String(a[0]));
        for (var i = 0; i < list.length; i++)
          if (list[i].token.id === e.token.id && list[i] !== e) return list[i].cert.der;
        throw new L.AgentError("CERT_NOT_FOUND");
      });
    });
    /* Checks the PIN at once (page mode); keeps it here for SOF_SignData. */
    method("SOF_Login", false, function (sync, a) {
      var certId = String(a[0]), pin = String(a[1] === undefined ? "" : a[1]);
      return L.then(entryFor(sync, certId), function (e) {
        return L.then(L.pinVerify(e, pin, sync), function (r) {
          sessions[certId] = r.consent ? "" : pin;
          return true;
        });
      });
    });
    method("SOF_Logout", false, function (s, a) { delete sessions[String(a[0])]; return true; });
    method("SOF_IsLogin", false, function (s, a) {
      return Object.prototype.hasOwnProperty.call(sessions, String(a[0]));
    });
    method("SOF_GetPinRetryCount", -1, function (sync, a) {
      return L.then(entryFor(sync, a[0]), function (e) { return retries(e.token); });
    });
    method("SOF_ChangePassWd", false, function (sync, a) {
      return L.then(entryFor(sync, a[0]), function (e) {
        return L.then(L.request("POST", "/api/v1/tokens/" + encodeURIComponent(e.token.id) + "/pin/change",
                                { old_pin: String(a[1]), new_pin: String(a[2]) }, sync), function () {
          if (Object.prototype.hasOwnProperty.call(sessions, String(a[0]))) sessions[String(a[0])] = String(a[2]);
          return true;
        });
      });
    });
    method("SOF_GetCertInfo", "", function (s, a) { return L.certInfo(a[0], a[1]); });
    method("SOF_GetCertInfoByOid", "", function (s, a) { return L.certInfoByOid(a[0], a[1]); });
    method("SOF_SignData", "", function (sync, a) { return signWith(sync, a[0], a[1], "raw"); });
    /* dwFlag 0: attached (the data inside the PKCS#7), 1: detached (BJCA). */
    method("SOF_SignMessage", "", function (sync, a) {
      return signWith(sync, a[1], a[2], Number(a[0]) === 1 ? "cms" : "cms-attached");
    });
    /* The agent does not verify: the server does (docs/MIGRATION.md). */
    method("SOF_VerifySignedData", false, function () { throw new L.AgentError("NOT_SUPPORTED"); });
    method("SOF_VerifySignedMessage", false, function () { throw new L.AgentError("NOT_SUPPORTED"); });
    method("SOF_GenRandom", "", function (s, a) {
      var n = Number(a[0]);
      if (!(n >= 1 && n <= 65536)) throw new L.AgentError("BAD_ARGUMENT");
      var b = new Uint8Array(n), str = "";
      global.crypto.getRandomValues(b);
      for (var i = 0; i < n; i++) str += String.fromCharCode(b[i]);
      return global.btoa(str);
    });
    sof.SOF_GetLastError = function () { return lastError; };
    /* Drops every PIN (page unload). */
    sof.clearAll = function () { sessions = {}; };
    return sof;
  }

  function install() {
    var sof = create(global.UKeyLegacy);
    global.SOF = sof;
    Object.keys(sof).forEach(function (k) {
      if (/^SOF_/.test(k) && !(k in global)) global[k] = sof[k];
    });
    if (global.addEventListener) global.addEventListener("pagehide", sof.clearAll);
    return sof;
  }
  global.SOFFacade = { create: create, CODES: CODES, userList: userList };
  /* Page: loads ukey-agent.js and common.js right after this script (they
   * run before the page's next script), and common.js calls install. */
  if (global.UKeyLegacy) install();
  else if (global.document) {
    (global.UKeyLegacyPending = global.UKeyLegacyPending || []).push(install);
    var dir = (global.document.currentScript ? global.document.currentScript.src : "/sdk/legacy/").replace(/[^/]*$/, "");
    global.document.write('<script src="' + dir + '../ukey-agent.js"></script><script src="' + dir + 'common.js"></script>');
  }
})(typeof globalThis !== "undefined" ? globalThis : window);
