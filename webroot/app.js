// The agent's own page (https://127.0.0.1:27443/): agent and trust state,
// readers and tokens live from /api/v1/events, certificates with their
// countdown and revocation verdict, PIN state and unblock, a test login
// verified here with WebCrypto, every diagnostic check, and the redacted
// report for the help desk. Text only goes in with textContent.
"use strict";
(function () {
  var T = {
    "zh-CN": {
      title: "ukey-agent 证书助手", checking: "正在检查…", copyReport: "复制诊断报告", downloadReport: "下载诊断报告",
      tokensTitle: "读卡器与 UKey", loginTitle: "测试登录", checksTitle: "诊断检查",
      loginHelp: "用所选证书签名一个随机挑战值，并在本页验证签名：证明 UKey、证书和助手都能正常工作。",
      certificate: "证书", pin: "PIN 码", testLogin: "测试登录", running: "助手正在运行，版本 {v}。",
      noReader: "未发现读卡器或 UKey：请插入 UKey。", empty: "无卡片", unresponsive: "卡片无响应", in_use: "被其他程序占用",
      present: "已插入", holder: "持有人", issuer: "颁发者", serial: "序列号", validUntil: "有效期至 {d}（还剩 {n} 天）",
      expired: "已于 {d} 过期", notYet: "{d} 才生效", revocation: "吊销状态", rv_pass: "未吊销", rv_fail: "已吊销",
      rv_warn: "状态未知（OCSP 不认识该证书）", rv_skip: "未检查", pinLeft: "PIN 剩余 {n} 次", pinBlocked: "PIN 已锁定",
      pinUnknown: "PIN 次数未知", pukLeft: "PUK 剩余 {n} 次", pukBlocked: "PUK 已锁定：只能由发证机构处理",
      confirmLastPuk: "我确认 PUK 正确，使用最后一次机会（再错 UKey 将永久锁定）", wait: "请 {s} 秒后再试。",
      unblock: "用 PUK 解锁", puk: "PUK 解锁码", newPin: "新 PIN 码", doUnblock: "解锁",
      unblocked: "已解锁，新 PIN 可以使用。", signing: "请稍候，正在签名…", verified: "签名验证通过：{s}（{a}）。整个登录链路工作正常。",
      verifiedByAgent: "签名已由证书助手按国密标准验证：{s}（{a}，浏览器本身不能验证国密签名）。整个登录链路工作正常。",
      badSig: "签名没有通过验证！请联系发证机构。", copied: "诊断报告已复制（已隐去姓名，不含 PIN）。",
      copyFailed: "无法复制：请使用“下载诊断报告”。", downloaded: "诊断报告已下载（已隐去姓名，不含 PIN）。",
      summary: "失败 {fail} · 警告 {warn} · 通过 {pass} · 跳过 {skip}", evidence: "证据", fix: "解决办法：",
      stopped: "无法连接助手。", retries: "PIN 码错误，还剩 {n} 次机会。", lang: "English",
      sitesTitle: "允许使用助手的网站", noSites: "还没有允许任何网站（agent.json 的 allow_origins）。",
      pe_consent: "PIN 码在助手的确认窗口中输入", pe_page: "PIN 码在网站页面中输入（旧方式）",
      details: "证书详情", keyUsage: "密钥用途", extKeyUsage: "扩展用途", sigAlg: "签名算法", validity: "有效期",
      ku_digitalSignature: "数字签名", ku_nonRepudiation: "不可否认", ku_keyEncipherment: "密钥加密",
      ku_dataEncipherment: "数据加密", ku_keyAgreement: "密钥协商", ku_keyCertSign: "签发证书", ku_cRLSign: "签发 CRL",
      eku_clientAuth: "客户端身份认证", eku_serverAuth: "服务器身份认证", eku_emailProtection: "安全电子邮件",
      eku_codeSigning: "代码签名",
      f_CN: "名称", f_O: "单位", f_OU: "部门", f_C: "国家", f_ST: "省份", f_L: "城市", f_serialNumber: "证件号码",
      f_emailAddress: "电子邮件", "f_2.5.4.97": "机构标识（如统一社会信用代码）", "x_1.2.156.112570.148": "身份证号码",
      verifyPin: "验证 PIN 码", doVerify: "验证", pinOk: "PIN 码正确：UKey 工作正常。",
      confirmLastPin: "我确认 PIN 正确，使用最后一次机会（再错 PIN 将被锁定）",
      remind: "证书“{cn}”将在 {n} 天后到期（{d}），请及时续期。", remindExpired: "证书“{cn}”已于 {d} 过期，请办理续期。",
      renew: "去续期", unlockLink: "在线解锁", changeLink: "变更证书信息", downloadLink: "下载证书助手",
      servicePoints: "服务网点", hotline: "客服热线", issuerService: "发证机构服务", profilesTitle: "发证机构与服务",
      open: "打开"
    },
    en: {
      title: "ukey-agent certificate agent", checking: "Checking…", copyReport: "Copy report", downloadReport: "Download report",
      tokensTitle: "Readers and tokens", loginTitle: "Test login", checksTitle: "Diagnostic checks",
      loginHelp: "Signs a random challenge with the chosen certificate and verifies the signature on this page: proof that the token, the certificate and the agent work.",
      certificate: "Certificate", pin: "PIN", testLogin: "Test login", running: "The agent is running, version {v}.",
      noReader: "No reader or token found: plug in your token.", empty: "no card", unresponsive: "card does not answer",
      in_use: "held by another program", present: "inserted", holder: "Holder", issuer: "Issuer", serial: "Serial",
      validUntil: "valid until {d} ({n} days left)", expired: "expired on {d}", notYet: "valid from {d}",
      revocation: "Revocation", rv_pass: "not revoked", rv_fail: "REVOKED", rv_warn: "unknown (the OCSP responder does not know it)",
      rv_skip: "not checked", pinLeft: "PIN: {n} tries left", pinBlocked: "PIN blocked", pinUnknown: "PIN tries unknown",
      pukLeft: "PUK: {n} tries left", pukBlocked: "PUK blocked: only the issuer can help",
      confirmLastPuk: "I am sure of the PUK: use the last attempt (one more wrong PUK locks the token for good)",
      wait: "Try again in {s} s.",
      unblock: "Unblock with the PUK", puk: "PUK", newPin: "New PIN", doUnblock: "Unblock",
      unblocked: "Unblocked: the new PIN works now.", signing: "Signing, please wait…",
      verified: "Signature verified: {s} ({a}). The whole login chain works.",
      verifiedByAgent: "Signature verified by the agent to the 国密 standard: {s} ({a}; browsers cannot check SM2 themselves). The whole login chain works.", badSig: "The signature does NOT verify! Contact the issuer.",
      copied: "Report copied (names masked, no PIN).", copyFailed: "Cannot copy: use \"Download report\".",
      downloaded: "Report downloaded (names masked, no PIN).", summary: "{fail} failed · {warn} warnings · {pass} passed · {skip} skipped",
      evidence: "Evidence", fix: "What to do: ", stopped: "Cannot reach the agent.", retries: "Wrong PIN: {n} tries left.",
      lang: "中文", sitesTitle: "Sites allowed to use the agent", noSites: "No site is allowed yet (allow_origins in agent.json).",
      pe_consent: "PIN typed in the agent's confirmation window", pe_page: "PIN typed in the site's page (the old way)",
      details: "Certificate details", keyUsage: "Key usage", extKeyUsage: "Extended key usage",
      sigAlg: "Signature algorithm", validity: "Validity",
      ku_digitalSignature: "digital signature", ku_nonRepudiation: "non-repudiation", ku_keyEncipherment: "key encipherment",
      ku_dataEncipherment: "data encipherment", ku_keyAgreement: "key agreement", ku_keyCertSign: "certificate signing",
      ku_cRLSign: "CRL signing", eku_clientAuth: "client authentication", eku_serverAuth: "server authentication",
      eku_emailProtection: "secure e-mail", eku_codeSigning: "code signing",
      f_CN: "Name", f_O: "Organization", f_OU: "Unit", f_C: "Country", f_ST: "Province", f_L: "City",
      f_serialNumber: "ID number", f_emailAddress: "E-mail", "f_2.5.4.97": "Organization identifier (e.g. unified social credit code)",
      "x_1.2.156.112570.148": "ID card number",
      verifyPin: "Verify the PIN", doVerify: "Verify", pinOk: "The PIN is correct: the token works.",
      confirmLastPin: "I am sure of the PIN: use the last attempt (one more wrong PIN blocks it)",
      remind: "The certificate \"{cn}\" expires in {n} days ({d}): renew it in time.",
      remindExpired: "The certificate \"{cn}\" expired on {d}: renew it.",
      renew: "Renew", unlockLink: "Unblock online", changeLink: "Change certificate details", downloadLink: "Download the agent",
      servicePoints: "Service points", hotline: "Hotline", issuerService: "Issuer's services", profilesTitle: "Issuers and their services",
      open: "Open"
    }
  };
  var lang = /^zh/i.test(navigator.language || "") ? "zh-CN" : /^en/i.test(navigator.language || "") ? "en" : "zh-CN";
  var revocation = {};   // certificate serial -> verdict, from the diagnostics
  var profiles = {};     // deployment profile id -> profile, from /api/v1/profiles
  var notice = "";       // said above the token list until a card comes or goes, e.g. that the
                         // PIN was unblocked (the form that did it is gone with the block)
  var lastTokens = null;

  function $(id) { return document.getElementById(id); }
  function t(key, vars) {
    return T[lang][key].replace(/\{(\w+)\}/g, function (_, k) { return vars && vars[k] !== undefined ? vars[k] : ""; });
  }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function errText(e) { return e ? (e[lang] || e.i18n && e.i18n[lang] || e.message || e.code || "") : ""; }
  function api(method, path, body) {
    return fetch(path, {
      method: method, cache: "no-store",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json().then(function (j) { if (!r.ok) { var e = j.error || {}; e.status = r.status; throw e; } return j; });
    });
  }

  function translate() {
    document.documentElement.lang = lang;
    document.title = t("title");
    $("lang").textContent = t("lang");
    $("lang").lang = lang === "en" ? "zh-CN" : "en";
    Array.prototype.forEach.call(document.querySelectorAll("[data-t]"), function (e) { e.textContent = t(e.dataset.t); });
  }

  function showStatus() {
    return api("GET", "/api/v1/status").then(function (s) {
      $("version").textContent = s.version;
      $("state").textContent = t("running", { v: s.version });
      var sites = $("sites");
      sites.textContent = "";
      (s.allow_origins || []).forEach(function (o) {
        var li = el("li");
        li.appendChild(el("strong", o.origin));
        li.appendChild(el("div", t("pe_" + o.pin_entry), "detail"));
        sites.appendChild(li);
      });
      if (!sites.children.length) sites.appendChild(el("li", t("noSites"), "detail"));
    }, function () { $("state").textContent = t("stopped"); });
  }

  // The date of an ISO time on this computer's calendar, "YYYY-MM-DD".
  function day(iso) {
    var d = new Date(Date.parse(iso));
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  }

  // Calendar days from today to `until`'s date: how the agent counts a
  // reminder's days_left and the desktop reminder its "N days".
  function days(until) {
    return Math.round((Date.parse(day(until) + "T00:00:00Z") - Date.parse(day(new Date().toISOString()) + "T00:00:00Z")) /
                      86400000);
  }

  // A link to a CA's page: https://, or http:// on loopback (the demo); else nothing.
  function link(url, text) {
    if (typeof url !== "string" || !/^(https:\/\/|http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])[:/])/.test(url)) return null;
    var a = el("a", text);
    a.href = url; a.target = "_blank"; a.rel = "noopener noreferrer";
    return a;
  }
  function label(prefix, key) { return T[lang][prefix + key] || key; }

  // The issuer's contacts and self-service links of a profile, on one line.
  function serviceLine(p, topics) {
    var box = el("div", null, "detail service");
    box.appendChild(el("span", t("issuerService") + ": " + ((p.name && p.name[lang]) || p.id)));
    if (p.hotline) box.appendChild(el("span", " · " + t("hotline") + " " + p.hotline));
    topics.concat(["service_points"]).forEach(function (k) {
      var url = k === "service_points" ? p.service_points_url : p.links && p.links[k];
      var a = link(url, t({ renew: "renew", unlock: "unlockLink", change_details: "changeLink", download: "downloadLink",
                            service_points: "servicePoints" }[k]));
      if (a) { box.appendChild(document.createTextNode(" · ")); box.appendChild(a); }
    });
    return box;
  }

  // What the certificate is, as the old client's details dialog showed it.
  function certDetails(c) {
    var d = el("details", null, "cert-details"), dl = el("dl");
    d.appendChild(el("summary", t("details")));
    function row(k, v) { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v)); }
    (c.subject_fields || []).forEach(function (f) { row(label("f_", f.key), f.value); });
    (c.cn_extensions || []).forEach(function (x) { row(label("x_", x.oid), x.value); });
    row(t("serial"), c.serial);
    row(t("issuer"), c.issuer);
    row(t("validity"), day(c.not_before) + " — " + day(c.not_after));
    row(t("keyUsage"), (c.key_usage || []).map(function (k) { return label("ku_", k); }).join("、") || "—");
    if (c.ext_key_usage && c.ext_key_usage.length)
      row(t("extKeyUsage"), c.ext_key_usage.map(function (k) { return label("eku_", k); }).join("、"));
    row(t("sigAlg"), c.signature_algorithm + " · " + c.key_type + " " + c.key_size);
    d.appendChild(dl);
    return d;
  }

  // "Expires in N days" with the renewal link, for a certificate the agent reminds of.
  function reminderLine(c) {
    var r = c.reminder, box = el("div", null, "reminder error");
    box.appendChild(el("span", r.days_left < 0 ? t("remindExpired", { cn: c.subject_cn || c.subject, d: day(c.not_after) })
      : t("remind", { cn: c.subject_cn || c.subject, n: r.days_left, d: day(c.not_after) })));
    var a = link(r.renew_url, t("renew"));
    if (a) { box.appendChild(document.createTextNode(" ")); box.appendChild(a); }
    return box;
  }

  function certBlock(tok, c) {
    var box = el("div", null, "cert"), now = Date.now(), left = days(c.not_after), v = revocation[c.serial];
    box.appendChild(el("strong", c.subject_cn || c.subject));
    box.appendChild(el("span", " — " + c.slot + " · " + c.key_type + " " + c.key_size, "detail"));
    box.appendChild(el("div", t("holder") + ": " + c.subject, "detail"));
    box.appendChild(el("div", t("issuer") + ": " + c.issuer, "detail"));
    box.appendChild(el("div", t("serial") + ": " + c.serial, "detail"));
    box.appendChild(el("div", Date.parse(c.not_before) > now ? t("notYet", { d: day(c.not_before) })
      : left < 0 ? t("expired", { d: day(c.not_after) })
      : t("validUntil", { d: day(c.not_after), n: left }), left < 30 ? "detail error" : "detail"));
    var rv = el("div", null, "detail");
    rv.appendChild(el("span", v || "skip", "badge " + (v || "skip")));
    rv.appendChild(el("span", t("revocation") + ": " + t("rv_" + (v || "skip"))));
    box.appendChild(rv);
    if (c.profile && profiles[c.profile]) box.appendChild(serviceLine(profiles[c.profile], ["renew", "change_details"]));
    box.appendChild(certDetails(c));
    return box;
  }

  function pinBlock(tok) {
    var p = tok.pin || {}, box = el("div", null, "detail");
    box.appendChild(el("span", p.blocked ? t("pinBlocked") : p.retries_left === null || p.retries_left === undefined
      ? t("pinUnknown") : t("pinLeft", { n: p.retries_left }), p.blocked || p.retries_left === 1 ? "error" : ""));
    var k = tok.puk || {};
    if (k.blocked || typeof k.retries_left === "number")
      box.appendChild(el("span", " · " + (k.blocked ? t("pukBlocked") : t("pukLeft", { n: k.retries_left })),
                         k.blocked || k.retries_left === 1 ? "error" : ""));
    if (p.blocked && !k.blocked) box.appendChild(unblockForm(tok));
    if (!p.blocked) box.appendChild(verifyForm(tok));
    var prof = tok.certificates.map(function (c) { return profiles[c.profile]; }).filter(Boolean)[0];
    if ((p.blocked || k.blocked) && prof) box.appendChild(serviceLine(prof, ["unlock"]));
    return box;
  }

  // " Try again in N s." after an answer that says when (pacing), else "".
  function waitText(e) {
    return e.retry_after_ms ? " " + t("wait", { s: Math.ceil(e.retry_after_ms / 1000) }) : "";
  }

  // A form of secrets for one token: password fields, the last try spent
  // only when the user ticks the box (the agent answers o.lastCode until
  // then), the answer below; the fields are cleared after each try.
  function secretForm(tok, o) {
    var d = el("details", null, o.cls), f = el("form"), out = el("p", null, "detail"), inputs = {};
    d.appendChild(el("summary", t(o.summary)));
    o.fields.forEach(function (name) {
      var x = el("input"), l = el("label", t(name));
      x.type = "password"; x.inputMode = "numeric"; x.autocomplete = "off"; x.required = true;
      x.id = name + "-" + tok.id; l.htmlFor = x.id;
      f.appendChild(l); f.appendChild(x);
      inputs[name] = x;
    });
    var last = el("p"), cb = el("input"), cl = el("label", t(o.confirm));
    cb.type = "checkbox"; cb.id = o.confirm + "-" + tok.id; cl.htmlFor = cb.id;
    last.appendChild(cb); last.appendChild(cl);
    last.hidden = !(o.counter && o.counter.retries_left === 1);
    f.appendChild(last);
    var b = el("button", t(o.submit)); b.type = "submit";
    f.appendChild(b);
    f.addEventListener("submit", function (ev) {
      var values = {};
      ev.preventDefault();
      Object.keys(inputs).forEach(function (k) { values[k] = inputs[k].value; });
      api("POST", "/api/v1/tokens/" + encodeURIComponent(tok.id) + o.path, o.body(values, cb.checked))
        .then(function () { out.textContent = t(o.done); out.className = "ok"; if (o.after) o.after(); },
              function (e) {
                var n = e.retries_left;
                if (e.code === o.lastCode) last.hidden = false;
                out.textContent = (e.code === "PIN_INCORRECT" && typeof n === "number" ? t("retries", { n: n })
                  : errText(e.i18n) + (typeof n === "number" ? " (" + n + ")" : "")) + waitText(e);
                out.className = "error";
                if (e.help) {   // the issuer's hotline and page for this error (its deployment profile)
                  var a = link(e.help.url, t("open"));
                  out.appendChild(document.createTextNode(" " + (e.help.name || "") + (e.help.phone ? " · " + t("hotline") + " " + e.help.phone : "")));
                  if (a) { out.appendChild(document.createTextNode(" ")); out.appendChild(a); }
                }
              })
        .then(function () { Object.keys(inputs).forEach(function (k) { inputs[k].value = ""; }); });
    });
    d.appendChild(f);
    d.appendChild(out);
    return d;
  }

  // 验证UKEY: the PIN checked by the token, nothing signed.
  function verifyForm(tok) {
    return secretForm(tok, { cls: "verify-pin", summary: "verifyPin", fields: ["pin"], confirm: "confirmLastPin",
                             counter: tok.pin, lastCode: "PIN_LAST_ATTEMPT", submit: "doVerify", path: "/pin/verify",
                             done: "pinOk",
                             body: function (v, last) { return { pin: v.pin, confirm_last_attempt: last }; } });
  }

  function unblockForm(tok) {
    return secretForm(tok, { cls: "unblock", summary: "unblock", fields: ["puk", "newPin"], confirm: "confirmLastPuk",
                             counter: tok.puk, lastCode: "PUK_LAST_ATTEMPT", submit: "doUnblock", path: "/pin/unblock",
                             done: "unblocked", after: function () { notice = t("unblocked"); showTokens(); },
                             body: function (v, last) { return { puk: v.puk, new_pin: v.newPin, confirm_last_attempt: last }; } });
  }

  // The token list again with what the checks or profiles added, unless the
  // user is at one of its PIN forms (a redraw would wipe what is typed there
  // and the answer); cards coming and going redraw it anyway.
  function redrawTokens() {
    if (lastTokens) showTokens(true);
  }
  function atPinForm() { return $("readers").querySelector("details.verify-pin[open], details.unblock[open]"); }

  // The readers and tokens, with the notice above them; `quiet` (a redraw
  // with nothing new about the cards) leaves them be while the user is at a
  // PIN form, also when the form was opened while the list was being fetched.
  function showTokens(quiet) {
    return api("GET", "/api/v1/tokens").then(function (d) {
      var list = $("readers"), byId = {}, select = $("test-cert"), chosen = select.value;
      if (quiet === true && atPinForm()) return;
      lastTokens = d;
      showReminders(d);
      list.textContent = "";
      select.textContent = "";
      (d.tokens || []).forEach(function (tok) { byId[tok.id] = tok; });
      $("tokens-state").textContent = !d.readers.length ? t("noReader") : notice;
      d.readers.forEach(function (r) {
        var li = el("li"), tok = r.token && byId[r.token];
        li.appendChild(el("strong", r.name));
        li.appendChild(el("span", " — " + (T[lang][r.state] ? t(r.state) : r.state), "detail"));
        if (r.error) li.appendChild(el("div", errText(r.error), "error"));
        if (tok) {
          li.appendChild(el("div", tok.type + " · " + tok.id, "detail"));
          li.appendChild(pinBlock(tok));
          tok.certificates.forEach(function (c) {
            li.appendChild(certBlock(tok, c));
            var o = el("option", (c.subject_cn || c.subject) + " · " + c.slot);
            o.value = tok.id + "|" + c.id;
            select.appendChild(o);
          });
        }
        list.appendChild(li);
      });
      if (chosen) select.value = chosen;
    }, function (e) {
      $("readers").textContent = "";
      $("tokens-state").textContent = errText(e.i18n) || t("stopped");
    });
  }

  // Reminders of expiring certificates, above everything else.
  function showReminders(d) {
    var box = $("reminders");
    box.textContent = "";
    (d.tokens || []).forEach(function (tok) {
      tok.certificates.forEach(function (c) { if (c.reminder) box.appendChild(reminderLine(c)); });
    });
  }

  // The deployment profiles: each issuer's contacts and self-service links.
  function showProfiles() {
    return api("GET", "/api/v1/profiles").then(function (r) {
      var list = $("profiles");
      profiles = {};
      list.textContent = "";
      (r.profiles || []).forEach(function (p) {
        profiles[p.id] = p;
        var li = el("li");
        li.appendChild(el("strong", (p.name && p.name[lang]) || p.id));
        li.appendChild(serviceLine(p, ["renew", "unlock", "change_details", "download"]));
        list.appendChild(li);
      });
      $("profiles-section").hidden = !list.children.length;
      redrawTokens();
    }, function () { $("profiles-section").hidden = true; });
  }

  function showChecks() {
    return api("GET", "/api/v1/diagnostics?lang=" + lang).then(function (r) {
      var list = $("checks");
      list.textContent = "";
      $("checks-summary").textContent = t("summary", r.summary);
      revocation = {};
      r.checks.forEach(function (c) {
        var li = el("li", null, "s-" + c.status);
        li.id = "check-" + c.id.replace(/\./g, "-");
        li.appendChild(el("span", c.status, "badge " + c.status));
        li.appendChild(el("strong", c.title));
        li.appendChild(el("div", c.detail, "detail"));
        if (c.fix) {
          var fix = el("p", t("fix") + c.fix, "fix"), a = c.help && link(c.help.url, t("open"));
          if (a) { fix.appendChild(document.createTextNode(" ")); fix.appendChild(a); }
          li.appendChild(fix);
        }
        var ev = el("details");
        ev.appendChild(el("summary", t("evidence")));
        ev.appendChild(el("pre", JSON.stringify(c.evidence, null, 2)));
        li.appendChild(ev);
        list.appendChild(li);
        if (c.id === "cert.revoked" && Array.isArray(c.evidence))
          c.evidence.forEach(function (e) { revocation[e.serial] = e.revoked; });
      });
      redrawTokens();
    });
  }

  // --- the test login, verified here -------------------------------------
  function b64(bytes) { var s = ""; bytes.forEach(function (b) { s += String.fromCharCode(b); }); return btoa(s); }
  function unb64(text) { return Uint8Array.from(atob(text), function (c) { return c.charCodeAt(0); }); }
  function derNext(d, pos) {  // one DER element: {tag, start (header), body, end}
    var tag = d[pos], len = d[pos + 1], body = pos + 2;
    if (len & 0x80) {
      var n = len & 0x7f;
      len = 0;
      for (var i = 0; i < n; i++) len = len * 256 + d[body + i];
      body += n;
    }
    return { tag: tag, start: pos, body: body, end: body + len };
  }
  function spkiOf(der) {  // Certificate -> tbsCertificate -> subjectPublicKeyInfo (7th, or 6th without version)
    var tbs = derNext(der, derNext(der, 0).body), p = tbs.body, n = der[p] === 0xa0 ? 6 : 5;
    for (var i = 0; i < n; i++) p = derNext(der, p).end;
    var spki = derNext(der, p);
    return der.slice(spki.start, spki.end);
  }
  function verify(token, challenge) {
    var algs = {
      ES256: [{ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }, "SHA-256"],
      ES384: [{ name: "ECDSA", namedCurve: "P-384" }, { name: "ECDSA", hash: "SHA-384" }, "SHA-384"],
      RS256: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, { name: "RSASSA-PKCS1-v1_5" }, "SHA-256"],
      PS256: [{ name: "RSA-PSS", hash: "SHA-256" }, { name: "RSA-PSS", saltLength: 32 }, "SHA-256"]
    }, a = algs[token.algorithm], enc = new TextEncoder();
    if (!a) return Promise.resolve(false);
    return Promise.all([
      crypto.subtle.importKey("spki", spkiOf(unb64(token.unverifiedCertificate)), a[0], false, ["verify"]),
      crypto.subtle.digest(a[2], enc.encode(location.origin)),
      crypto.subtle.digest(a[2], enc.encode(challenge))
    ]).then(function (x) {
      var data = new Uint8Array(x[1].byteLength + x[2].byteLength);
      data.set(new Uint8Array(x[1]), 0);
      data.set(new Uint8Array(x[2]), x[1].byteLength);
      return crypto.subtle.verify(a[1], x[0], unb64(token.signature), data);
    });
  }
  function testLogin(ev) {
    ev.preventDefault();
    var parts = $("test-cert").value.split("|"), out = $("test-result"), challenge = b64(crypto.getRandomValues(new Uint8Array(32)));
    var pin = $("test-pin").value;
    $("test-pin").value = "";
    out.textContent = t("signing");
    out.className = "";
    api("POST", "/api/v1/login", { challenge: challenge, pin: pin, token: parts[0], certificate: parts[1] })
      .then(function (token) {
        // WebCrypto has no SM2: the agent checked an SM2-SM3 signature
        // before answering (docs/PROTOCOL.md), and the page says so.
        var sm2 = token.algorithm === "SM2-SM3";
        return (sm2 ? Promise.resolve(true) : verify(token, challenge)).then(function (ok) {
          var cert = lastTokens && lastTokens.tokens.map(function (x) { return x.certificates; })
            .reduce(function (a, b) { return a.concat(b); }, []).filter(function (c) { return c.id === parts[1]; })[0];
          out.textContent = ok ? t(sm2 ? "verifiedByAgent" : "verified", { s: cert ? cert.subject_cn || cert.subject : "", a: token.algorithm }) : t("badSig");
          out.className = ok ? "ok" : "error";
        });
      }, function (e) {
        out.textContent = (e.code === "PIN_INCORRECT" ? t("retries", { n: e.retries_left }) : errText(e.i18n)) + waitText(e);
        out.className = "error";
        showTokens();
      });
  }

  // --- the report for the help desk --------------------------------------
  function report() {
    return fetch("/api/v1/diagnostics?mask_names=1&lang=" + lang, { cache: "no-store" }).then(function (r) { return r.text(); });
  }
  function copyReport() {
    report().then(function (text) { return navigator.clipboard.writeText(text); })
      .then(function () { $("report-state").textContent = t("copied"); },
            function () { $("report-state").textContent = t("copyFailed"); });
  }
  function downloadReport() {
    report().then(function (text) {
      var a = el("a"), url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
      a.href = url;
      a.download = "ukey-agent-report-" + new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-") + ".json";
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
      $("report-state").textContent = t("downloaded");
    });
  }

  function refreshAll() { showStatus(); showProfiles(); showTokens(); showChecks(); }

  translate();
  $("lang").addEventListener("click", function () { lang = lang === "en" ? "zh-CN" : "en"; translate(); refreshAll(); });
  $("test-form").addEventListener("submit", testLogin);
  $("copy-report").addEventListener("click", copyReport);
  $("download-report").addEventListener("click", downloadReport);
  refreshAll();
  if (window.EventSource) {
    var source = new EventSource("/api/v1/events"), pending = null;
    ["reader-added", "reader-removed", "token-inserted", "token-removed"].forEach(function (type) {
      source.addEventListener(type, function () {
        notice = "";
        showTokens();
        clearTimeout(pending);
        pending = setTimeout(showChecks, 500);
      });
    });
  }
})();
