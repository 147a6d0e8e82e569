/*
 * ukey-agent JS SDK: lets a portal page log people in with their UKey
 * through the local ukey-agent. No dependency. Load it as a classic script
 * (window.UKeyAgent) or import ukey-agent.mjs (ES module, same API).
 *
 *   const state = await UKeyAgent.detect();       // running | untrusted-certificate | not-running | blocked-by-browser
 *   const {tokens} = await UKeyAgent.listTokens();
 *   const token = await UKeyAgent.authenticate(challenge, {pin});   // the Web eID token for your back end
 *   const signed = await UKeyAgent.sign(text, {mode: "consent"});   // legacy pages: data signatures (issue 15)
 *
 * Every failure is a UKeyAgentError with a stable `code` (docs/API.md, and
 * AGENT_UNREACHABLE / TIMEOUT / BLOCKED_BY_BROWSER / POPUP_BLOCKED /
 * CONSENT_REPLACED from the SDK itself) and
 * a message in zh-CN and en. Types: ukey-agent.d.ts. Guide: docs/INTEGRATION.md.
 */
(function (global) {
  "use strict";

  var settings = {
    base: "https://127.0.0.1:27443",
    probe: "http://127.0.0.1:27480",
    timeout: 15000,
    lang: null
  };

  var SDK_MESSAGES = {
    AGENT_UNREACHABLE: {
      "zh-CN": "无法连接本机的证书助手（ukey-agent）。请确认已安装并正在运行。",
      en: "Cannot reach the certificate agent (ukey-agent) on this computer. Make sure it is installed and running."
    },
    TIMEOUT: {
      "zh-CN": "证书助手没有及时响应，请重试。",
      en: "The certificate agent did not answer in time; please try again."
    },
    BLOCKED_BY_BROWSER: {
      "zh-CN": "浏览器禁止本网站访问本机的证书助手。请在地址栏左侧的网站设置中，允许“本地网络访问”，然后刷新页面。",
      en: "The browser blocks this site from reaching the certificate agent on this computer. In the site settings (left of the address bar) allow \"Local network access\", then reload the page."
    },
    UNTRUSTED_CERTIFICATE: {
      "zh-CN": "证书助手正在运行，但浏览器不信任它的本地证书。请运行“ukey-agent trust install”，然后重启浏览器。",
      en: "The certificate agent runs, but this browser does not trust its local certificate. Run \"ukey-agent trust install\", then restart the browser."
    },
    POPUP_BLOCKED: {
      "zh-CN": "浏览器阻止了证书助手的确认窗口。请允许本网站弹出窗口，然后再点一次登录。",
      en: "The browser blocked the agent's confirmation window. Allow pop-ups for this site, then click log in again."
    },
    CONSENT_REPLACED: {
      "zh-CN": "本页面又发起了新的请求，这个较早的请求已被取代：请在证书助手最新打开的窗口中确认。",
      en: "This page started a newer request, which replaced this one: confirm it in the agent's newest window."
    },
    USER_CANCELLED: {
      "zh-CN": "您关闭了证书助手的确认窗口，登录已取消。",
      en: "The agent's confirmation window was closed: the login is cancelled."
    },
    PERMISSION_PROMPT: {
      "zh-CN": "浏览器接下来会询问是否允许本网站访问本机设备（本地网络访问）。请选择“允许”，以便使用 UKey 登录。",
      en: "The browser will now ask whether this site may reach devices on this computer (local network access). Choose \"Allow\" to log in with your UKey."
    }
  };

  function language() {
    if (settings.lang) return settings.lang;
    var langs = (global.navigator && (global.navigator.languages || [global.navigator.language])) || [];
    for (var i = 0; i < langs.length; i++) {
      if (/^zh/i.test(langs[i] || "")) return "zh-CN";
      if (/^en/i.test(langs[i] || "")) return "en";
    }
    return "zh-CN";
  }

  /* The error every call rejects with. */
  class UKeyAgentError extends Error {
    constructor(code, messages, status, details) {
      var m = messages || SDK_MESSAGES[code] || { "zh-CN": code, en: code };
      super(m[language()] || m.en);
      this.name = "UKeyAgentError";
      this.code = code;
      this.messages = { "zh-CN": m["zh-CN"], en: m.en };
      this.status = status || 0;
      this.details = details || {};
    }
    /* The message in `lang` ("zh-CN" or "en"). */
    messageIn(lang) { return this.messages[lang] || this.message; }
  }

  function sdkError(code) { return new UKeyAgentError(code, SDK_MESSAGES[code]); }

  /* fetch with a timeout; never sends cookies; marks the loopback target for
   * Local Network Access (Chrome 142+, Edge 143+). */
  function send(url, init, timeout) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = null, timedOut = false;
    var opts = Object.assign({ mode: "cors", credentials: "omit", cache: "no-store",
                               targetAddressSpace: "loopback" }, init || {});
    if (controller) {
      opts.signal = controller.signal;
      timer = setTimeout(function () { timedOut = true; controller.abort(); }, timeout || settings.timeout);
    }
    return fetch(url, opts).then(function (r) {
      if (timer) clearTimeout(timer);
      return r;
    }, function (e) {
      if (timer) clearTimeout(timer);
      throw timedOut ? sdkError("TIMEOUT") : e;
    });
  }

  /* One API call: the JSON answer, or a UKeyAgentError from the envelope. */
  function call(method, path, body, timeout) {
    var init = { method: method };
    if (body !== undefined) {
      init.headers = { "Content-Type": "application/json" };
      init.body = JSON.stringify(body);
    }
    return send(settings.base + path, init, timeout).then(function (r) {
      return r.json().then(function (data) {
        if (r.ok) return data;
        var e = (data && data.error) || {};
        var details = Object.assign({}, e);
        delete details.code; delete details.message; delete details.i18n;
        throw new UKeyAgentError(e.code || "INTERNAL_ERROR", e.i18n, r.status, details);
      }, function () {
        throw new UKeyAgentError("INTERNAL_ERROR", null, r.status);
      });
    }, function (e) {
      if (e instanceof UKeyAgentError) throw e;
      return permissionState().then(function (state) {
        throw sdkError(state === "denied" ? "BLOCKED_BY_BROWSER" : "AGENT_UNREACHABLE");
      });
    });
  }

  /* The browser's Local Network Access permission for this page:
   * "granted", "prompt", "denied", or "unknown" (no such permission here). */
  function permissionState() {
    var names = ["loopback-network", "local-network-access", "local-network"];
    if (!global.navigator || !navigator.permissions || !navigator.permissions.query)
      return Promise.resolve("unknown");
    function next(i) {
      if (i >= names.length) return Promise.resolve("unknown");
      return navigator.permissions.query({ name: names[i] }).then(function (s) {
        return s.state;
      }, function () { return next(i + 1); });
    }
    return next(0);
  }

  /*
   * Is the agent there, and can this page use it?
   *   running                the agent answers (version)
   *   untrusted-certificate  it runs (the plain-HTTP probe answers) but the
   *                          browser does not trust its HTTPS certificate
   *   blocked-by-browser     Local Network Access was denied for this site
   *   not-running            nothing answers: not installed, or stopped
   * options.onPermissionPrompt(text): called, and awaited, before the
   * browser is about to show its Local Network Access prompt, so the page
   * can explain it first.
   */
  function detect(options) {
    options = options || {};
    var helpUrl = settings.base + "/";
    return permissionState().then(function (state) {
      if (state === "prompt" && typeof options.onPermissionPrompt === "function")
        return Promise.resolve(options.onPermissionPrompt(SDK_MESSAGES.PERMISSION_PROMPT[language()],
                                                          SDK_MESSAGES.PERMISSION_PROMPT));
    }).then(function () {
      return call("GET", "/api/v1/status", undefined, options.timeout || 4000);
    }).then(function (status) {
      return { state: "running", version: status.version, status: status, helpUrl: helpUrl };
    }, function (e) {
      if (e.code === "BLOCKED_BY_BROWSER")
        return { state: "blocked-by-browser", version: null, error: e, helpUrl: helpUrl };
      if (e.code === "TIMEOUT")
        return { state: "not-running", version: null, error: e, helpUrl: helpUrl };
      return send(settings.probe + "/probe", { method: "GET" }, 3000).then(function (r) {
        if (!r.ok) throw new Error("probe " + r.status);
        return r.json();
      }).then(function (info) {
        return { state: "untrusted-certificate", version: info.version, probe: info, helpUrl: helpUrl,
                 error: sdkError("UNTRUSTED_CERTIFICATE") };
      }, function () {
        return permissionState().then(function (state) {
          return state === "denied"
            ? { state: "blocked-by-browser", version: null, error: sdkError("BLOCKED_BY_BROWSER"), helpUrl: helpUrl }
            : { state: "not-running", version: null, error: sdkError("AGENT_UNREACHABLE"), helpUrl: helpUrl };
        });
      });
    });
  }

  function listTokens(options) {
    return call("GET", "/api/v1/tokens", undefined, options && options.timeout);
  }

  /*
   * Calls callback({type, reader, token}) when a reader or token comes or
   * goes (type: reader-added, reader-removed, token-inserted, token-removed).
   * Reconnects by itself (1 s, doubling to 30 s). Returns a function that stops it.
   */
  function onTokenChange(callback) {
    var types = ["reader-added", "reader-removed", "token-inserted", "token-removed"];
    var source = null, stopped = false, delay = 1000, timer = null;
    function open() {
      if (stopped) return;
      source = new EventSource(settings.base + "/api/v1/events");
      source.onopen = function () { delay = 1000; };
      source.onerror = function () {
        if (source.readyState !== EventSource.CLOSED) return; /* the browser retries by itself */
        source = null;
        timer = setTimeout(open, delay);
        delay = Math.min(delay * 2, 30000);
      };
      types.forEach(function (type) {
        source.addEventListener(type, function (ev) {
          var data = {};
          try { data = JSON.parse(ev.data); } catch (ignored) { /* keep {} */ }
          callback({ type: type, reader: data.reader, token: data.token });
        });
      });
    }
    open();
    return function stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (source) source.close();
    };
  }

  function verifyPin(token, pin, options) {
    options = options || {};
    return call("POST", "/api/v1/tokens/" + encodeURIComponent(token) + "/pin/verify",
                { pin: pin, confirm_last_attempt: !!options.confirmLastAttempt }, options.timeout);
  }

  /*
   * Signs the portal's challenge with the token; resolves with the Web eID
   * authentication token ({unverifiedCertificate, algorithm, signature,
   * format, appVersion}) to send to the portal's back end as it is.
   * options: mode ("consent": the PIN is typed in the agent's own window,
   * which this page cannot read — call it from a click; "page": options.pin
   * is sent), pin, token, certificate, algorithm ("PS256" for RSA-PSS),
   * confirmLastAttempt, timeout.
   */
  function authenticate(challenge, options) {
    return signWithToken("/api/v1/login", { challenge: challenge }, options || {});
  }

  /*
   * Signs data (issue 15; only for sites whose agent.json entry has
   * "legacy_sign": true — such a signature is not bound to the site).
   * data: a string (signed as its UTF-8 bytes), or a Uint8Array /
   * ArrayBuffer (sent as Base64; the agent's window then shows its length
   * and SHA-256). Resolves with {format, algorithm, signature (Base64),
   * certificate (Base64 DER), token, certificate_id}.
   * options: as authenticate's, and format ("raw", "cms", "cms-attached"),
   * algorithm (the key's: "SM3withSM2", "SHA256withRSA", "SHA256withECDSA",
   * "SHA384withECDSA"), encoding ("base64": a string that already is Base64).
   */
  function sign(data, options) {
    options = options || {};
    var body = { data: data };
    if (typeof data !== "string") {
      var bytes = new Uint8Array(data), bin = "";
      for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
      body.data = global.btoa(bin);
      body.encoding = "base64";
    } else if (options.encoding) {
      body.encoding = options.encoding;
    }
    if (options.format) body.format = options.format;
    return signWithToken("/api/v1/sign", body, options);
  }

  /* A login or a data signature (`path`), page mode or the agent's window. */
  function signWithToken(path, body, options) {
    if (options.token) body.token = options.token;
    if (options.certificate) body.certificate = options.certificate;
    if (options.algorithm) body.algorithm = options.algorithm;
    if (options.mode === "consent") return signInWindow(path, body, options);
    body.pin = options.pin;
    body.confirm_last_attempt = !!options.confirmLastAttempt;
    return call("POST", path, body, options.timeout || 60000);
  }

  /* The consent flow in progress on this page, if any: {replace()}. */
  var consentFlow = null;

  /* Gives up request `id` at `path` (DELETE): its window, if still open,
   * then says it was replaced and signs nothing. */
  function withdraw(path, id) {
    call("DELETE", path + "/" + encodeURIComponent(id), {}).catch(function () { /* gone already */ });
  }

  /* The consent flow: open the window now (still inside the click), ask
   * the agent for a pending request, show its page, and wait for the
   * answer at `path`/{id}. One flow per page: a newer call (a double
   * click, a second button) replaces the one in progress, which rejects
   * with CONSENT_REPLACED and withdraws its request at the agent; the
   * newer one takes the window over while it can still be reached. */
  function signInWindow(path, body, options) {
    if (consentFlow) consentFlow.replace();
    var popup = global.open ? global.open("", "ukey-agent-consent", "popup,width=520,height=680") : null;
    var flow = { replaced: false, request: null };
    consentFlow = flow;
    body.consent = true;
    return new Promise(function (resolve, reject) {
      function fail(e) {
        if (flow.replaced) return;
        if (popup && !popup.closed) popup.close();
        reject(e);
      }
      flow.replace = function () {
        flow.replaced = true;
        if (flow.request) withdraw(path, flow.request);
        reject(sdkError("CONSENT_REPLACED"));
      };
      call("POST", path, body).then(function (pending) {
        if (flow.replaced) return withdraw(path, pending.request);
        flow.request = pending.request;
        if (!popup) throw sdkError("POPUP_BLOCKED");
        popup.location.href = pending.consent_url;
        var deadline = Date.now() + (pending.expires_in + 5) * 1000;
        /* The answer comes from the agent only. The window's page sends
         * Cross-Origin-Opener-Policy: same-origin, so this page loses its
         * handle as soon as it loads (popup.closed reads true at once) and
         * cannot talk to it; a window the user closes cancels the request at
         * the agent (pagehide), which the poll then reports. */
        function poll() {
          if (flow.replaced) return;
          call("GET", path + "/" + encodeURIComponent(pending.request), undefined, options.timeout).then(function (r) {
            if (flow.replaced) return;
            if (r.state !== "pending") return resolve(r);
            if (Date.now() > deadline) return fail(sdkError("TIMEOUT"));
            setTimeout(poll, 600);
          }, fail);
        }
        setTimeout(poll, 600);
      }).catch(fail);
    }).then(function (r) {
      if (consentFlow === flow) consentFlow = null;
      return r;
    }, function (e) {
      if (consentFlow === flow) consentFlow = null;
      throw e;
    });
  }

  /* base: the agent's HTTPS origin; probe: its plain-HTTP probe origin;
   * timeout (ms) for calls; lang: "zh-CN" or "en" (default: the browser's). */
  function configure(options) {
    Object.keys(options || {}).forEach(function (k) {
      if (k in settings) settings[k] = options[k];
    });
    return Object.assign({}, settings);
  }

  global.UKeyAgent = {
    configure: configure,
    detect: detect,
    permissionState: permissionState,
    listTokens: listTokens,
    onTokenChange: onTokenChange,
    verifyPin: verifyPin,
    authenticate: authenticate,
    sign: sign,
    language: language,
    UKeyAgentError: UKeyAgentError
  };
})(typeof globalThis !== "undefined" ? globalThis : window);
