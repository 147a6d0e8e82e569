// The agent's own page: status, readers and tokens, refreshed live from
// /api/v1/events. Text only goes in with textContent (never innerHTML).
"use strict";
(function () {
  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function errorText(err) {
    return err ? (err["zh-CN"] || err.message || "") + " / " + (err.en || "") : "";
  }

  function showStatus() {
    fetch("/api/v1/status", { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        $("state").textContent = "助手正在运行 / The agent is running";
        $("version").textContent = s.version;
        $("pcsc").textContent = s.pcsc.available ? "正常 / available"
          : "不可用 / not available: " + (s.pcsc.detail || s.pcsc.error);
        $("facts").hidden = false;
      })
      .catch(function () { $("state").textContent = "无法读取助手状态 / Cannot read the agent's status"; });
  }

  function certItem(c) {
    var li = el("li");
    li.appendChild(el("strong", c.subject_cn || c.subject || c.id));
    li.appendChild(el("span", " — " + c.slot + " (" + c.key_type + " " + c.key_size + ")"));
    li.appendChild(el("div", "颁发者 / Issuer: " + c.issuer, "detail"));
    li.appendChild(el("div", "有效期至 / Valid until: " + c.not_after, "detail"));
    return li;
  }

  function showTokens() {
    fetch("/api/v1/tokens", { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        var list = $("readers"), byId = {};
        list.textContent = "";
        if (d.error) { $("tokens-state").textContent = errorText(d.error); return; }
        (d.tokens || []).forEach(function (t) { byId[t.id] = t; });
        $("tokens-state").textContent = d.readers.length ? "" : "未发现读卡器或 UKey / No reader or token found";
        d.readers.forEach(function (r) {
          var li = el("li"), t = r.token && byId[r.token];
          li.appendChild(el("strong", r.name));
          li.appendChild(el("span", " — " + r.state));
          if (r.error) li.appendChild(el("div", errorText(r.error), "error"));
          if (t) {
            var pin = t.pin.blocked ? "PIN 已锁定 / PIN blocked"
              : "PIN 剩余次数 / PIN tries left: " + (t.pin.retries_left === null ? "?" : t.pin.retries_left);
            li.appendChild(el("div", t.type + " " + t.id + " · " + pin, "detail"));
            var certs = el("ul");
            t.certificates.forEach(function (c) { certs.appendChild(certItem(c)); });
            li.appendChild(certs);
          }
          list.appendChild(li);
        });
      })
      .catch(function () { $("tokens-state").textContent = "无法读取 UKey 列表 / Cannot list tokens"; });
  }

  showStatus();
  showTokens();
  if (window.EventSource) {
    var source = new EventSource("/api/v1/events");
    ["reader-added", "reader-removed", "token-inserted", "token-removed"].forEach(function (type) {
      source.addEventListener(type, showTokens);
    });
  }
})();
