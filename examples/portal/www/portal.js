// The demo portal's login page: the whole flow a portal needs, with the
// ukey-agent SDK (loaded from the portal's own copy in /sdk/). Text goes in
// with textContent only.
"use strict";
(function () {
  var T = {
    "zh-CN": {
      title: "演示门户", switch: "English", checking: "正在检查证书助手…", help: "打开证书助手的诊断页面",
      loginTitle: "UKey 登录", tokenLabel: "证书", pinLabel: "PIN 码", login: "登录",
      confirmLast: "我确认 PIN 正确，使用最后一次机会", welcome: "登录成功", who: "登录用户：", serial: "证书序列号：",
      logout: "退出", running: "证书助手正在运行（版本 {v}）。", noToken: "请插入 UKey。",
      untrusted: "证书助手已安装，但浏览器不信任它的本地证书。请运行“ukey-agent trust install”，然后重启浏览器。",
      notRunning: "没有检测到证书助手。请安装并启动 ukey-agent，然后刷新本页。",
      blocked: "浏览器禁止本网站访问证书助手。请在地址栏左侧的网站设置中允许“本地网络访问”，然后刷新本页。",
      retries: "PIN 码错误，还剩 {n} 次机会。", lastAttempt: "只剩最后一次机会：确认 PIN 正确后勾选下面的确认框再登录。",
      blockedPin: "PIN 已锁定。请在证书助手的诊断页面用 PUK 解锁，或携带 UKey 到发证机构办理。",
      signing: "正在用 UKey 签名…", refused: "门户拒绝了登录：{e}", loggedOut: "已退出。",
      permission: "浏览器将询问是否允许本网站访问本机设备，请选择“允许”。",
      consentNote: "点击登录后，请在证书助手弹出的窗口中核对网站并输入 PIN 码。", waitWindow: "请在证书助手的窗口中输入 PIN 码…"
    },
    en: {
      title: "Demo portal", switch: "中文", checking: "Looking for the certificate agent…", help: "Open the agent's diagnostic page",
      loginTitle: "Log in with your UKey", tokenLabel: "Certificate", pinLabel: "PIN", login: "Log in",
      confirmLast: "I am sure of the PIN: use the last attempt", welcome: "Logged in", who: "User: ", serial: "Certificate serial: ",
      logout: "Log out", running: "The certificate agent is running (version {v}).", noToken: "Insert your UKey.",
      untrusted: "The certificate agent is installed, but this browser does not trust its local certificate. Run \"ukey-agent trust install\", then restart the browser.",
      notRunning: "No certificate agent found. Install and start ukey-agent, then reload this page.",
      blocked: "The browser blocks this site from reaching the certificate agent. Allow \"Local network access\" in the site settings (left of the address bar), then reload.",
      retries: "Wrong PIN: {n} attempt(s) left.", lastAttempt: "One attempt left: make sure of the PIN, tick the box below, then log in.",
      blockedPin: "The PIN is blocked. Unblock it with the PUK on the agent's diagnostic page, or take the token to its issuer.",
      signing: "Signing with the UKey…", refused: "The portal refused the login: {e}", loggedOut: "Logged out.",
      permission: "The browser will ask whether this site may reach devices on this computer: choose \"Allow\".",
      consentNote: "After you click log in, check the site and type your PIN in the agent's window.",
      waitWindow: "Type your PIN in the agent's window…"
    }
  };
  var lang = /^zh/i.test(navigator.language || "") ? "zh-CN" : /^en/i.test(navigator.language || "") ? "en" : "zh-CN";
  var A = window.UKeyAgent, tokens = [], mode = "page";
  function $(id) { return document.getElementById(id); }
  function t(key, vars) {
    return T[lang][key].replace(/\{(\w+)\}/g, function (_, k) { return vars && vars[k] !== undefined ? vars[k] : ""; });
  }
  function say(text, ok) { $("message").textContent = text || ""; $("message").className = ok ? "ok" : ""; }
  function translate() {
    document.documentElement.lang = lang;
    document.title = t("title");
    Array.prototype.forEach.call(document.querySelectorAll("[data-t]"), function (e) { e.textContent = t(e.dataset.t); });
    A.configure({ lang: lang });
  }
  function api(method, path, body) {
    return fetch(path, {
      method: method, credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) { return r.json().then(function (j) { j.httpStatus = r.status; return j; }); });
  }

  function showTokens() {
    return A.listTokens().then(function (list) {
      var select = $("token");
      tokens = list.tokens || [];
      select.textContent = "";
      tokens.forEach(function (tok) {
        var cert = tok.certificates.filter(function (c) { return c.authentication; })[0] || tok.certificates[0];
        var o = document.createElement("option");
        o.value = tok.id;
        o.textContent = (cert ? (cert.subject_cn || cert.subject) : tok.id) + " · " + tok.type;
        select.appendChild(o);
      });
      $("login").hidden = tokens.length === 0 || !$("welcome").hidden;
      if (!tokens.length) say(t("noToken"));
      else if ($("message").textContent === t("noToken")) say("");
    }, function (e) { say(e.messageIn(lang)); });
  }

  function showState(d) {
    var s = $("agent-state");
    /* Where the agent wants this site's users to type the PIN. */
    mode = d.status && d.status.pin_entry === "consent" ? "consent" : "page";
    $("pin-row").hidden = mode === "consent";
    $("pin").required = mode !== "consent";
    $("consent-note").hidden = mode !== "consent";
    $("agent-help").hidden = d.state === "running";
    $("agent-help-link").href = d.helpUrl;
    s.dataset.state = d.state;
    s.className = d.state === "running" ? "state-ok" : "state-bad";
    s.textContent = d.state === "running" ? t("running", { v: d.version })
      : d.state === "untrusted-certificate" ? t("untrusted")
      : d.state === "blocked-by-browser" ? t("blocked") : t("notRunning");
  }

  function login(ev) {
    ev.preventDefault();
    var pin = $("pin").value, token = $("token").value;
    $("submit").disabled = true;
    say(t(mode === "consent" ? "waitWindow" : "signing"), true);
    api("POST", "/api/challenge", {}).then(function (c) {
      return A.authenticate(c.challenge, { mode: mode, pin: pin, token: token,
                                           confirmLastAttempt: $("confirm-last").checked });
    }).then(function (authToken) {
      return api("POST", "/api/login", { token: authToken });
    }).then(function (r) {
      if (!r.logged_in) throw { portal: r.error ? r.error.code + " — " + r.error.detail : String(r.httpStatus) };
      showWelcome(r);
      say("");
    }).catch(function (e) {
      $("last-attempt").hidden = true;
      if (e.portal) say(t("refused", { e: e.portal }));
      else if (e.code === "PIN_INCORRECT") say(t("retries", { n: e.details.retries_left }));
      else if (e.code === "PIN_LAST_ATTEMPT") { $("last-attempt").hidden = false; say(t("lastAttempt")); }
      else if (e.code === "PIN_BLOCKED") { say(t("blockedPin")); $("agent-help").hidden = false; }
      else say(e.messageIn ? e.messageIn(lang) : String(e));
      if (e.code) $("message").dataset.code = e.code;
    }).then(function () {
      $("pin").value = "";
      $("submit").disabled = false;
    });
  }

  function showWelcome(me) {
    $("who").textContent = me.subject;
    $("serial").textContent = me.serial;
    $("welcome").hidden = false;
    $("login").hidden = true;
  }

  function start() {
    translate();
    $("lang").addEventListener("click", function () { lang = lang === "en" ? "zh-CN" : "en"; translate(); refresh(); });
    $("login").addEventListener("submit", login);
    $("logout").addEventListener("click", function () {
      api("POST", "/api/logout", {}).then(function () { $("welcome").hidden = true; say(t("loggedOut"), true); showTokens(); });
    });
    api("GET", "/api/config").then(function (c) {
      A.configure({ base: c.agent, probe: c.probe, lang: lang });
      return api("GET", "/api/me");
    }).then(function (me) {
      if (me.logged_in) showWelcome(me);
      refresh();
    });
  }

  function refresh() {
    A.detect({ onPermissionPrompt: function () { say(t("permission"), true); } }).then(function (d) {
      showState(d);
      if (d.state !== "running") { $("login").hidden = true; return; }
      showTokens();
      if (!refresh.listening) {
        refresh.listening = true;
        A.onTokenChange(function () { showTokens(); });
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
