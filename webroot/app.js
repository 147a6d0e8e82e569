// The agent's own status page: reads /api/v1/status from the same origin.
"use strict";
(function () {
  function show(id, text) { document.getElementById(id).textContent = text; }
  fetch("/api/v1/status", { cache: "no-store" })
    .then(function (r) { return r.json(); })
    .then(function (s) {
      show("state", "助手正在运行 / The agent is running");
      show("version", s.version);
      show("pcsc", s.pcsc.available ? "正常 / available"
        : "不可用 / not available: " + (s.pcsc.detail || s.pcsc.error));
      show("readers", String(s.readers));
      document.getElementById("facts").hidden = false;
    })
    .catch(function () {
      show("state", "无法读取助手状态 / Cannot read the agent's status");
    });
})();
