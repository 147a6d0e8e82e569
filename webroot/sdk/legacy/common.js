/*
 * Shared core of the legacy facades (safeengine.js, sof.js), issue 15:
 * the agent transport (one request function, synchronous XHR for old pages
 * or asynchronous for the *Async twins), the token/certificate lookup, and a
 * small DER reader for X.509 with the old GetCertInfo type numbers.
 * Finds the agent as the SDK does: window.UKEY_AGENT = {base: ...} set
 * before the include, else UKeyAgent's settings (ukey-agent.js), else the
 * default https://127.0.0.1:27443. Guide: docs/MIGRATION.md.
 */
(function (global) {
  "use strict";

  /* window.UKEY_AGENT goes into the SDK's settings once, at load. */
  if (global.UKeyAgent && global.UKEY_AGENT) global.UKeyAgent.configure(global.UKEY_AGENT);
  function base() {
    if (global.UKeyAgent) return global.UKeyAgent.configure().base;
    return (global.UKEY_AGENT && global.UKEY_AGENT.base) || "https://127.0.0.1:27443";
  }

  /* An agent error: code (the API's UPPER_SNAKE code, or AGENT_UNREACHABLE),
   * details (retries_left, ...). */
  function AgentError(code, details) {
    this.code = code;
    this.details = details || {};
  }

  function answer(xhr) {
    if (xhr.status === 0) throw new AgentError("AGENT_UNREACHABLE");
    var data = null;
    try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
    if (xhr.status >= 200 && xhr.status < 300 && data) return data;
    var err = (data && data.error) || {};
    throw new AgentError(err.code || "INTERNAL_ERROR", err);
  }

  /* One API call. sync: the JSON answer (throws AgentError); otherwise a
   * Promise of it. */
  function request(method, path, body, sync) {
    var xhr = new XMLHttpRequest();
    function go() {
      xhr.open(method, base() + path, !sync);
      if (body !== undefined) xhr.setRequestHeader("Content-Type", "application/json");
      xhr.send(body === undefined ? null : JSON.stringify(body));
    }
    if (sync) {
      try { go(); } catch (e) { throw new AgentError("AGENT_UNREACHABLE"); }
      return answer(xhr);
    }
    return new Promise(function (resolve, reject) {
      xhr.onload = xhr.onerror = function () {
        try { resolve(answer(xhr)); } catch (e) { reject(e); }
      };
      try { go(); } catch (e) { reject(new AgentError("AGENT_UNREACHABLE")); }
    });
  }

  /* Runs step(value) on a sync value or a Promise alike. */
  function then(v, step) {
    return v && typeof v.then === "function" ? v.then(step) : step(v);
  }

  /* Every certificate on the inserted tokens: [{token, cert, certId}] where
   * certId is "<token id>/<certificate id>" (the facades' CertID). */
  /* Every certificate of every token, in the order the old clients offered
   * them: authentication certificates first, and among them 国密 (SM2) ones
   * first, since the old controls were written for SM2 UKeys; otherwise in
   * the agent's order. */
  function certificates(sync) {
    return then(request("GET", "/api/v1/tokens", undefined, sync), function (data) {
      var out = [];
      (data.tokens || []).forEach(function (t) {
        (t.certificates || []).forEach(function (c) {
          out.push({ token: t, cert: c, certId: t.id + "/" + c.id, rank: out.length });
        });
      });
      function weight(e) { return (e.cert.authentication ? 2 : 0) + (e.cert.key_type === "SM2" ? 1 : 0); }
      return out.sort(function (x, y) { return weight(y) - weight(x) || x.rank - y.rank; });
    });
  }

  /* The entry for CertID, or the first of certificates() when certId is
   * empty; throws CERT_NOT_FOUND (TOKEN_NOT_FOUND when there is none). */
  function findCert(list, certId) {
    for (var i = 0; i < list.length; i++)
      if (!certId || list[i].certId === certId) return list[i];
    throw new AgentError(list.length ? "CERT_NOT_FOUND" : "TOKEN_NOT_FOUND");
  }

  /* Page mode PIN check. Async on a consent-mode origin (the agent answers
   * PIN_ENTRY_IN_AGENT_WINDOW) it resolves {consent: true}: the PIN is then
   * typed in the agent's window when signing. */
  function pinVerify(entry, pin, sync) {
    var r = request("POST", "/api/v1/tokens/" + encodeURIComponent(entry.token.id) + "/pin/verify",
                    { pin: pin }, sync);
    if (sync) return r;
    return r.catch(function (e) {
      if (e.code === "PIN_ENTRY_IN_AGENT_WINDOW") return { consent: true };
      throw e;
    });
  }

  /* Consent mode (async only): the SDK's flow (ukey-agent.js, loaded with
   * the facades) opens the agent's window, which asks the PIN and shows
   * what is signed, and waits for the answer; its errors become AgentErrors. */
  function consentSign(body) {
    return global.UKeyAgent.sign(body.data, { mode: "consent", format: body.format, token: body.token,
                                              certificate: body.certificate }).catch(function (e) {
      throw new AgentError(e.code || "INTERNAL_ERROR", e.details);
    });
  }

  /* The Base64 signature of data with entry's key: page mode with the PIN;
   * async with no PIN (a consent-mode session) or when the origin turns out
   * to be in consent mode, through the agent's window. */
  function sign(entry, pin, data, format, sync) {
    var body = { data: String(data), format: format, token: entry.token.id, certificate: entry.cert.id };
    var r;
    if (pin === "") {
      if (sync) throw new AgentError("PIN_ENTRY_IN_AGENT_WINDOW");
      r = consentSign(body);
    } else {
      body.pin = pin;
      r = request("POST", "/api/v1/sign", body, sync);
      if (!sync) r = r.catch(function (e) {
        if (e.code === "PIN_ENTRY_IN_AGENT_WINDOW") return consentSign(body);
        throw e;
      });
    }
    return then(r, function (a) { return a.signature; });
  }

  /* ---- DER reader ---- */
  function b64ToBytes(b64) {
    var s = global.atob(String(b64).replace(/-----[^-]+-----|\s/g, ""));
    var out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  function bytesToB64(b) {
    var s = "";
    for (var i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return global.btoa(s);
  }
  function hex(b) {
    var s = "";
    for (var i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
    return s.toUpperCase();
  }

  /* One TLV at off: {tag, start (of the value), end, len}. */
  function tlv(b, off, end) {
    if (off + 2 > end) throw new Error("DER: truncated");
    var tag = b[off], len = b[off + 1], p = off + 2;
    if ((tag & 0x1f) === 0x1f) throw new Error("DER: high tag");
    if (len & 0x80) {
      var n = len & 0x7f;
      if (n < 1 || n > 3 || p + n > end) throw new Error("DER: bad length");
      len = 0;
      while (n--) len = len * 256 + b[p++];
    }
    if (p + len > end) throw new Error("DER: truncated");
    return { tag: tag, start: p, end: p + len, head: off };
  }
  function children(b, node) {
    var out = [], p = node.start;
    while (p < node.end) { var c = tlv(b, p, node.end); out.push(c); p = c.end; }
    return out;
  }
  function oid(b, n) {
    var parts = [], v = 0;
    for (var i = n.start; i < n.end; i++) {
      v = v * 128 + (b[i] & 0x7f);
      if (!(b[i] & 0x80)) {
        if (!parts.length) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
        else parts.push(v);
        v = 0;
      }
    }
    return parts.join(".");
  }
  function utf8(b, s, e) {
    var str = "";
    for (var i = s; i < e; i++) str += "%" + (b[i] < 16 ? "0" : "") + b[i].toString(16);
    try { return decodeURIComponent(str); } catch (x) { return hex(b.subarray(s, e)); }
  }
  /* A string value (UTF8/Printable/IA5/T61/BMP/...), or null. */
  function text(b, n) {
    if (n.tag === 0x1e) {
      var s = "";
      for (var i = n.start; i + 1 < n.end; i += 2) s += String.fromCharCode(b[i] * 256 + b[i + 1]);
      return s;
    }
    if ([0x0c, 0x12, 0x13, 0x14, 0x16, 0x1a].indexOf(n.tag) >= 0) return utf8(b, n.start, n.end);
    return null;
  }

  var NAMES = { "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "S", "2.5.4.10": "O",
                "2.5.4.11": "OU", "2.5.4.5": "SERIALNUMBER", "1.2.840.113549.1.9.1": "E" };

  /* A Name as [{oid, value}] in order. */
  function rdns(b, name) {
    var out = [];
    children(b, name).forEach(function (set) {
      children(b, set).forEach(function (atv) {
        var k = children(b, atv);
        var v = text(b, k[1]);
        out.push({ oid: oid(b, k[0]), value: v === null ? hex(b.subarray(k[1].start, k[1].end)) : v });
      });
    });
    return out;
  }
  function dn(list) {
    return list.map(function (a) { return (NAMES[a.oid] || a.oid) + "=" + a.value; }).join(", ");
  }
  function attr(list, o) {
    for (var i = 0; i < list.length; i++) if (list[i].oid === o) return list[i].value;
    return "";
  }
  /* UTCTime / GeneralizedTime as YYYYMMDDHHMMSS. */
  function time(b, n) {
    var s = utf8(b, n.start, n.end).replace(/Z$/, "");
    if (n.tag === 0x17) s = (parseInt(s.slice(0, 2), 10) >= 50 ? "19" : "20") + s;
    return s.slice(0, 14);
  }

  /* The parsed certificate (Base64 DER or PEM). Throws on bad input. */
  function parseCert(b64) {
    var b = b64ToBytes(b64);
    var top = tlv(b, 0, b.length);
    var tbs = children(b, children(b, top)[0]);
    var i = tbs[0].tag === 0xa0 ? 1 : 0;
    var version = i ? b[children(b, tbs[0])[0].end - 1] + 1 : 1;
    var serial = tbs[i], issuer = tbs[i + 2], validity = children(b, tbs[i + 3]);
    var subject = tbs[i + 4], spki = children(b, tbs[i + 5]);
    var algParams = children(b, spki[0]);
    var keyOid = oid(b, algParams[0]);
    var curve = algParams[1] && algParams[1].tag === 0x06 ? oid(b, algParams[1]) : "";
    var exts = [];
    tbs.slice(i + 6).forEach(function (n) {
      if (n.tag !== 0xa3) return;
      children(b, children(b, n)[0]).forEach(function (e) {
        var k = children(b, e);
        var v = k[k.length - 1];
        exts.push({ oid: oid(b, k[0]), value: b.subarray(v.start, v.end) });
      });
    });
    return {
      bytes: b, version: version,
      serial: hex(b.subarray(serial.start, serial.end)).replace(/^00(?=.)/, ""),
      issuer: rdns(b, issuer), subject: rdns(b, subject),
      notBefore: time(b, validity[0]), notAfter: time(b, validity[1]),
      keyType: keyOid === "1.2.840.113549.1.1.1" ? "rsa" :
               curve === "1.2.156.10197.1.301" ? "sm2" : "ecc",
      publicKey: bytesToB64(b.subarray(spki[1].start + 1, spki[1].end)),
      extensions: exts
    };
  }

  /* The old GetCertInfo / GetCertDetail type numbers (docs/MIGRATION.md). */
  var INFO = {
    1: function (c) { return "V" + c.version; },
    2: function (c) { return c.serial; },
    3: function (c) { return c.keyType; },
    8: function (c) { return attr(c.issuer, "2.5.4.3"); },
    11: function (c) { return c.notBefore; },
    12: function (c) { return c.notAfter; },
    17: function (c) { return attr(c.subject, "2.5.4.3"); },
    20: function (c) { return c.publicKey; },
    33: function (c) { return dn(c.subject); },
    34: function (c) { return dn(c.issuer); },
    35: function (c) { return attr(c.subject, "2.5.4.5"); }
  };

  /* Info `type` of the certificate; throws Error on a bad certificate or
   * an unknown type. */
  function certInfo(cert, type) {
    var f = INFO[Number(type)];
    if (!f) throw new Error("unknown type");
    return f(parseCert(cert));
  }

  /* The value of a subject attribute or an extension by OID: a string
   * value as text, else the extension's DER as upper-case hex; "" when the
   * certificate has none. */
  function certInfoByOid(cert, o) {
    var c = parseCert(cert);
    var v = attr(c.subject, String(o));
    if (v) return v;
    for (var i = 0; i < c.extensions.length; i++) {
      if (c.extensions[i].oid !== String(o)) continue;
      var e = c.extensions[i].value;
      try {
        var n = tlv(e, 0, e.length);
        var s = n.end === e.length ? text(e, n) : null;
        if (s !== null) return s;
      } catch (x) { /* not one TLV: fall through to its raw form */ }
      var raw = utf8(e, 0, e.length);
      return /^[\x20-\x7e]+$/.test(raw) ? raw : hex(e);
    }
    return "";
  }

  /* The method definer of a facade: define(name, bad, body) adds
   * target[name] (synchronous: body(true, args), on failure fail(e) and the
   * old failure value `bad`) and target[name + "Async"] (a Promise of
   * body(false, args), rejecting with what fail(e) returns). */
  function definer(target, reset, fail) {
    return function (name, bad, body) {
      target[name] = function () {
        reset();
        try { return body(true, arguments); } catch (e) { fail(e); return bad; }
      };
      target[name + "Async"] = function () {
        var args = arguments;
        reset();
        return Promise.resolve().then(function () { return body(false, args); })
          .catch(function (e) { throw fail(e); });
      };
    };
  }

  /* Builds the facades whose scripts loaded before this one (see the end
   * of safeengine.js / sof.js). */
  function installPending() {
    var pending = global.UKeyLegacyPending || [];
    global.UKeyLegacyPending = null;
    pending.forEach(function (install) { install(); });
  }

  global.UKeyLegacy = {
    definer: definer,
    AgentError: AgentError,
    request: request,
    then: then,
    certificates: certificates,
    findCert: findCert,
    pinVerify: pinVerify,
    sign: sign,
    parseCert: parseCert,
    certInfo: certInfo,
    certInfoByOid: certInfoByOid,
    INFO_TYPES: Object.keys(INFO).map(Number)
  };
  installPending();
})(typeof globalThis !== "undefined" ? globalThis : window);
