// The browser end of tests/browser/test_browser.py: reads one JSON command
// per line on stdin, drives Debian's chromium or firefox-esr through
// puppeteer-core (Firefox over WebDriver BiDi), answers one JSON line each
// on stdout: {"ok": true, "value": ...} or {"ok": false, "error": "..."}.
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import puppeteer from "puppeteer-core";

const EXECUTABLES = { chromium: "/usr/bin/chromium", firefox: "/usr/bin/firefox-esr" };
let browser = null;
let page = null;       // the page commands act on
let mainPage = null;   // the first tab, back from a popup
let kind = null;
const consoleLog = [];
const dialogs = [];    // alert()/confirm() texts of the main page, accepted at once

async function launch({ browser: which, home, lang = "zh-CN", args = [], profile, screenshots }) {
  kind = which;
  const env = { ...process.env, HOME: home, LANG: lang === "zh-CN" ? "zh_CN.UTF-8" : "en_US.UTF-8",
                LANGUAGE: lang.replace("-", "_") };
  if (which === "chromium") {
    browser = await puppeteer.launch({
      executablePath: EXECUTABLES.chromium, headless: true, env, userDataDir: profile,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--lang=" + lang, "--accept-lang=" + (lang === "zh-CN" ? "zh-CN,zh,en" : "en-US,en"), ...args],
    });
  } else {
    browser = await puppeteer.launch({
      browser: "firefox", executablePath: EXECUTABLES.firefox, headless: true, env, userDataDir: profile,
      extraPrefsFirefox: {
        "intl.accept_languages": lang === "zh-CN" ? "zh-CN, zh, en" : "en-US, en",
        "intl.locale.requested": lang,
        "network.proxy.type": 0,
        "security.enterprise_roots.enabled": false,
      },
    });
  }
  page = mainPage = await browser.newPage();
  page.on("console", (m) => consoleLog.push(m.text()));
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.accept(); });
  await page.setViewport({ width: 1280, height: 860 });
  launch.screenshots = screenshots;
  return browser.version ? await browser.version() : which;
}

async function waitFor({ selector, text, timeout = 15000, gone = false }) {
  const deadline = Date.now() + timeout;
  let last = null;
  while (Date.now() < deadline) {
    last = await page.$eval(selector, (e) => e.textContent).catch(() => null);
    const hit = last !== null && (text === undefined || last.includes(text));
    if (gone ? !hit : hit) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`waited ${timeout} ms for ${selector}${gone ? " to lose" : ""} ${JSON.stringify(text)}; ` +
                  `it says ${JSON.stringify(last && last.slice(0, 400))}`);
}

const popups = [];     // the windows popup() acted on, in order

// The open pages whose URL contains `url`.
async function windows(url) {
  const found = [];
  for (const t of browser.targets()) {
    if (t.type() !== "page" || !t.url().includes(url)) continue;
    const p = await t.page().catch(() => null);
    if (p && !p.isClosed()) found.push(p);
  }
  return found;
}

const commands = {
  launch,
  async goto({ url }) {
    const r = await page.goto(url, { waitUntil: "load" });
    return r ? r.status() : null;
  },
  async click({ selector }) { await page.click(selector); return true; },
  async type({ selector, text }) {
    await page.$eval(selector, (e) => { e.value = ""; });
    await page.type(selector, text);
    return true;
  },
  waitFor,
  async text({ selector }) { return page.$eval(selector, (e) => e.textContent); },
  async attr({ selector, name }) { return page.$eval(selector, (e, n) => e.getAttribute(n), name); },
  async hidden({ selector }) { return page.$eval(selector, (e) => e.hidden || e.offsetParent === null); },
  // An async function body run in the page; its result must be JSON.
  async eval({ body }) { return page.evaluate(`(async () => { ${body} })()`); },
  async screenshot({ name }) {
    fs.mkdirSync(launch.screenshots, { recursive: true });
    const file = path.join(launch.screenshots, `${kind}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  },
  // Local Network Access permission for an origin (Chromium, over CDP):
  // "loopback-network" since Chrome split LNA, "local-network-access" before.
  async permission({ origin, setting }) {
    const session = await browser.target().createCDPSession();
    const set = [];
    for (const name of ["loopback-network", "local-network-access", "local-network"]) {
      try {
        await session.send("Browser.setPermission", { origin, setting, permission: { name } });
        set.push(name);
      } catch (e) { /* not a permission of this version */ }
    }
    if (!set.length) throw new Error("this Chromium has no Local Network Access permission");
    return set;
  },
  async console() { return consoleLog.splice(0); },
  // The dialogs (alert etc.) the main page has shown since the last call.
  async dialogs() { return dialogs.splice(0); },
  // Waits for a new window whose URL contains `url` (a popup: not one an
  // earlier popup() acted on, which may be closing still) and acts on it
  // from now on.
  async popup({ url, timeout = 15000 }) {
    const deadline = Date.now() + timeout;
    for (;;) {
      for (const p of await windows(url)) {
        if (popups.includes(p)) continue;
        page = p;
        popups.push(p);
        await page.setViewport({ width: 520, height: 680 });
        return page.url();
      }
      if (Date.now() > deadline) throw new Error(`no new window at ${url} within ${timeout} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  },
  // Acts again on a window popup() acted on: the last (ago 0), the one before (1) ...
  async usePopup({ ago }) { page = popups[popups.length - 1 - ago]; return page.url(); },
  // How many open windows show a URL containing `url`.
  async windowCount({ url }) { return (await windows(url)).length; },
  async mainPage() { page = mainPage; return page.url(); },
  // Whether the popup (current page) has been closed.
  async closed() { return page.isClosed(); },
  async setContent({ html }) { await page.setContent(html, { waitUntil: "load" }); return true; },
  // Whether any frame of the page has an element matching `selector`.
  async frameHas({ selector }) {
    for (const f of page.frames()) {
      if (f === page.mainFrame()) continue;
      const found = await f.$(selector).catch(() => null);
      if (found) return true;
    }
    return false;
  },
  async frameUrls() { return page.frames().map((f) => f.url()); },
  async close() {
    if (browser) await browser.close();
    browser = null;
    return true;
  },
};

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  let reply;
  try {
    const msg = JSON.parse(line);
    reply = { ok: true, value: await commands[msg.cmd](msg) };
  } catch (e) {
    reply = { ok: false, error: String(e && e.stack || e) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
}
if (browser) await browser.close();
