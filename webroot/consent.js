// The consent window: the agent's own page, where the user sees which site
// asks to log in (or, issue 15, to sign which data) with which certificate,
// and types the PIN — which no portal script can read (another origin, no
// CORS, never framed). The request id comes in the URL fragment and is
// removed from the address bar. A signing request's strings are the keys
// prefixed "sign_"; the data is shown as text, never as HTML.
"use strict";
(function () {
  var T = {
    "zh-CN": {
      title: "确认登录", asking: "以下网站请求用您的 UKey 登录：", originHelp: "请核对网址。只有您信任的网站，才输入 PIN 码。",
      certTitle: "将使用的证书", pin: "PIN 码", confirmLast: "我确认 PIN 正确，使用最后一次机会", submit: "确认登录",
      cancel: "取消", holder: "持有人", issuer: "颁发者", valid: "有效期", noToken: "请插入 UKey，然后稍候。",
      retries: "PIN 剩余 {n} 次机会", blocked: "PIN 已锁定：请在证书助手的诊断页面用 PUK 解锁，或到发证机构办理。",
      help: "发证机构 {name}：{how}", wrong: "PIN 码错误，还剩 {n} 次机会。", wait: "请 {s} 秒后再试。", last: "只剩最后一次机会：确认 PIN 正确后勾选确认框。",
      done: "登录已确认，窗口即将关闭。", cancelled: "已取消登录。", left: "请在 {s} 秒内确认",
      expired: "时间已到，请回到网站重新登录。", framed: "此页面不能嵌入其他网页中显示。", signing: "正在签名…", lang: "English",
      pinpad: "请在读卡器的键盘上输入 PIN 码，然后点击“确认登录”。",
      sign_title: "签名请求", sign_asking: "以下网站请求用您的 UKey 签名数据：", sign_submit: "确认签名",
      sign_pinpad: "请在读卡器的键盘上输入 PIN 码，然后点击“确认签名”。", sign_done: "签名已确认，窗口即将关闭。",
      sign_cancelled: "已取消签名。", sign_expired: "时间已到，请回到网站重新操作。",
      signedTitle: "待签名内容", signedHelp: "此签名不与网站绑定：只有您同意签署以上内容时才输入 PIN 码。",
      binary: "二进制数据，{n} 字节\nSHA-256：{hex}"
    },
    en: {
      title: "Confirm login", asking: "This site asks to log in with your UKey:", originHelp: "Check the address. Type your PIN only for a site you trust.",
      certTitle: "Certificate to be used", pin: "PIN", confirmLast: "I am sure of the PIN: use the last attempt", submit: "Log in",
      cancel: "Cancel", holder: "Holder", issuer: "Issuer", valid: "Valid", noToken: "Plug in your UKey, then wait a moment.",
      retries: "{n} PIN tries left", blocked: "The PIN is blocked: unblock it with the PUK on the agent's diagnostic page, or at the issuer.",
      help: "Your issuer, {name}: {how}", wrong: "Wrong PIN: {n} tries left.", wait: "Try again in {s} s.", last: "One try left: make sure of the PIN and tick the box.",
      done: "Login confirmed; this window closes now.", cancelled: "Login cancelled.", left: "Confirm within {s} s",
      expired: "Time is up: log in again from the site.", framed: "This page cannot be shown inside another page.", signing: "Signing…", lang: "中文",
      pinpad: "Type your PIN on the reader's keypad after clicking \"Log in\".",
      sign_title: "Signing request", sign_asking: "This site asks your UKey to sign data:", sign_submit: "Sign",
      sign_pinpad: "Type your PIN on the reader's keypad after clicking \"Sign\".",
      sign_done: "Signature confirmed; this window closes now.", sign_cancelled: "Signing cancelled.",
      sign_expired: "Time is up: start again from the site.",
      signedTitle: "Data to be signed", signedHelp: "This signature is not bound to the site: type your PIN only if you agree to sign the data above.",
      binary: "Binary data, {n} bytes\nSHA-256: {hex}"
    }
  };
  var lang = /^zh/i.test(navigator.language || "") ? "zh-CN" : /^en/i.test(navigator.language || "") ? "en" : "zh-CN";
  var id = location.hash.slice(1), ended = false, deadline = 0, info = null;
  function $(x) { return document.getElementById(x); }
  function t(k, v) {
    if (info && info.kind === "sign" && T[lang]["sign_" + k]) k = "sign_" + k;
    return T[lang][k].replace(/\{(\w+)\}/g, function (_, n) { return v && v[n] !== undefined ? v[n] : ""; });
  }
  function say(text, ok) { $("message").textContent = text; $("message").className = ok ? "ok" : ""; }
  function api(method, path, body, keepalive) {
    return fetch(path, { method: method, cache: "no-store", keepalive: !!keepalive,
                         headers: body ? { "Content-Type": "application/json" } : {},
                         body: body ? JSON.stringify(body) : undefined })
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) { var e = j.error || {}; throw e; } return j; }); });
  }
  // Where the token's issuer helps (the error's "help": its deployment profile).
  function helpText(h) {
    return t("help", { name: h.name || "", how: [h.phone, h.url].filter(Boolean).join(" · ") });
  }
  function errText(e) { return (e.i18n && e.i18n[lang]) || e.code || String(e); }
  // The date of an ISO time on this computer's calendar, as the agent's other pages show it.
  function day(iso) {
    var d = new Date(Date.parse(iso));
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  }
  function finish(text, ok) {
    ended = true;
    $("form").hidden = true;
    say(text, ok);
    setTimeout(function () { window.close(); }, 1200);
  }

  function translate() {
    document.documentElement.lang = lang;
    document.title = t("title") + " · ukey-agent";
    $("lang").textContent = t("lang");
    Array.prototype.forEach.call(document.querySelectorAll("[data-t]"), function (e) { e.textContent = t(e.dataset.t); });
    render();
    showCountdown();
  }

  function render() {
    if (!info) return;
    var box = $("cert"), c = info.certificate, p = info.pin;
    $("origin").textContent = info.origin;   // the Origin header the browser sent: nothing the site chose
    /* What is signed, before the PIN: the text itself (as text), or what identifies binary data. */
    var d = info.sign;
    $("signed-box").hidden = !d;
    if (d) $("signed").textContent = d.encoding === "text" ? d.text : t("binary", { n: d.bytes, hex: d.sha256 });
    box.textContent = "";
    if (!c) { box.textContent = t("noToken"); $("retries").textContent = ""; return; }
    [["holder", c.subject], ["issuer", c.issuer], ["valid", day(c.not_before) + " — " + day(c.not_after)]]
      .forEach(function (row) {
        var d = document.createElement("div");
        d.textContent = t(row[0]) + ": " + row[1];
        box.appendChild(d);
      });
    $("retries").textContent = p && p.blocked ? t("blocked") : p && p.retries_left !== null ? t("retries", { n: p.retries_left }) : "";
    /* A pin-pad reader: the PIN goes in on the reader, never through a page. */
    var pad = !!(p && p.pin_pad);
    $("pin").hidden = pad;
    $("pin").required = !pad;
    document.querySelector("label[for=pin]").textContent = pad ? t("pinpad") : t("pin");
  }

  function load() {
    return api("GET", "/api/v1/consent/" + encodeURIComponent(id)).then(function (r) {
      info = r;
      if (!deadline) deadline = Date.now() + r.expires_in * 1000;
      translate();             // the strings of its kind (login or sign)
    }, function (e) { finish(errText(e)); });
  }

  function secondsLeft() { return Math.max(0, Math.round((deadline - Date.now()) / 1000)); }
  function showCountdown() { $("countdown").textContent = deadline && !ended ? t("left", { s: secondsLeft() }) : ""; }
  function tick() {
    if (ended) return;
    showCountdown();
    if (deadline && secondsLeft() === 0) return finish(t("expired"));
    setTimeout(tick, 1000);
  }

  if (window.top !== window) {       // frame-ancestors 'none' already stops this; say so if not
    document.body.textContent = t("framed");
    return;
  }
  history.replaceState(null, "", "/consent.html");
  translate();
  $("lang").addEventListener("click", function () { lang = lang === "en" ? "zh-CN" : "en"; translate(); });
  $("form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var pin = $("pin").value;
    $("pin").value = "";
    $("submit").disabled = true;
    say(t("signing"), true);
    api("POST", "/api/v1/consent/" + encodeURIComponent(id), { pin: pin, confirm_last_attempt: $("confirm-last").checked })
      .then(function () { finish(t("done"), true); }, function (e) {
        // After a wrong PIN the agent pauses this token's PIN operations (pacing).
        var wait = e.retry_after_ms ? " " + t("wait", { s: Math.ceil(e.retry_after_ms / 1000) }) : "";
        if (e.code === "PIN_INCORRECT") say(t("wrong", { n: e.retries_left }) + wait);
        else if (e.code === "PIN_TOO_SOON") say(errText(e) + wait);
        else if (e.code === "PIN_LAST_ATTEMPT") { $("last-attempt").hidden = false; say(t("last")); }
        else if (e.code === "PIN_BLOCKED") say(t("blocked"));
        else if (e.code === "CONSENT_TIMEOUT" || e.code === "CONSENT_NOT_FOUND" || e.code === "USER_CANCELLED" ||
                 e.code === "CONSENT_REPLACED") finish(errText(e));
        else say(errText(e));
        if (e.help) say($("message").textContent + " " + helpText(e.help));
        if (e.code) $("message").dataset.code = e.code;
        load();
      }).then(function () { $("submit").disabled = false; });
  });
  $("cancel").addEventListener("click", function () {
    api("POST", "/api/v1/consent/" + encodeURIComponent(id) + "/cancel", {})
      .then(function () { finish(t("cancelled"), true); }, function (e) { finish(errText(e)); });
  });
  // Closing the window is a cancel too.
  window.addEventListener("pagehide", function () {
    if (!ended) api("POST", "/api/v1/consent/" + encodeURIComponent(id) + "/cancel", {}, true).catch(function () {});
  });
  load().then(tick);
})();
