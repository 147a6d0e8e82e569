/*
 * Unit test of the SDK's consent flow (webroot/sdk/ukey-agent.js) when a
 * page asks again while a flow is in progress (a double click): the newer
 * call replaces the older, which rejects with CONSENT_REPLACED, withdraws
 * its request at the agent (DELETE) and neither navigates nor closes the
 * window; the newer call gets the login. Both timings a browser has:
 *   A. the second call comes before the agent's page has loaded: both calls
 *      get the same named window from window.open;
 *   B. it comes after: the page's Cross-Origin-Opener-Policy has cut the
 *      window off, and window.open opens a second one.
 * Over a fake agent (a fake fetch); the real browsers: tests/browser.
 * Run: node tests/unit/test_sdk_consent.js (ctest unit.test_sdk_consent).
 */
"use strict";
const assert = require("assert");
const path = require("path");

const AGENT = "https://127.0.0.1:27443";
const sent = [];
const done = {};          /* request id -> the token the window confirmed */
let next = 0;
async function agent(method, url, body) {
  const u = url.slice(AGENT.length);
  sent.push(method + " " + u);
  await new Promise((r) => setTimeout(r, 20));   /* the agent answers a moment later */
  if (method === "POST" && u === "/api/v1/login" && body.consent === true) {
    const id = "r" + ++next;
    return [202, { request: id, consent_url: AGENT + "/consent.html#" + id, expires_in: 120 }];
  }
  const m = /^\/api\/v1\/login\/(r\d+)$/.exec(u);
  if (m && method === "GET") return done[m[1]] ? [200, done[m[1]]] : [202, { state: "pending", expires_in: 100 }];
  if (m && method === "DELETE") return [200, { withdrawn: true }];
  return [404, { error: { code: "NOT_FOUND" } }];
}
global.fetch = async (url, init) => {
  const [status, json] = await agent(init.method, url, init.body === undefined ? undefined : JSON.parse(init.body));
  return { ok: status >= 200 && status < 300, status, json: async () => json };
};
function window() { return { location: {}, closed: false, close() { this.closed = true; } }; }

require(path.resolve(__dirname, "../../webroot/sdk/ukey-agent.js"));
const A = global.UKeyAgent;
const CONSENT = { mode: "consent" };
const settle = (p) => p.then((v) => ({ ok: v }), (e) => ({ err: e }));
const until = async (f) => { for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 10)); assert.ok(f()); };

/* A flow that never ends is a failure too. */
setTimeout(() => { console.error("sdk consent flow: a call never settled"); process.exit(1); }, 30000).unref();

(async () => {
  /* A: the second click before the page loaded: one window for both. */
  const shared = window();
  global.open = () => shared;
  const first = settle(A.authenticate("Y2hhbGxlbmdlMQ==", CONSENT));
  const second = settle(A.authenticate("Y2hhbGxlbmdlMg==", CONSENT));
  const older = await first;
  assert.strictEqual(older.err && older.err.code, "CONSENT_REPLACED");
  assert.match(older.err.messageIn("zh-CN"), /取代/);
  await until(() => sent.includes("DELETE /api/v1/login/r1"));   /* withdrawn once its id came */
  await until(() => shared.location.href !== undefined);
  assert.strictEqual(shared.location.href, AGENT + "/consent.html#r2");  /* never r1's page */
  assert.ok(!shared.closed);
  done.r2 = { signature: "r2" };
  assert.deepStrictEqual((await second).ok, { signature: "r2" });
  assert.ok(!sent.includes("GET /api/v1/login/r1"));   /* the replaced flow never polled */

  /* B: the second click after the page loaded: a window each. */
  const opened = [];
  global.open = () => { const w = window(); opened.push(w); return w; };
  const third = settle(A.authenticate("Y2hhbGxlbmdlMw==", CONSENT));
  await until(() => opened[0].location.href === AGENT + "/consent.html#r3");
  await until(() => sent.includes("GET /api/v1/login/r3"));
  const fourth = settle(A.authenticate("Y2hhbGxlbmdlNA==", CONSENT));
  assert.strictEqual((await third).err.code, "CONSENT_REPLACED");
  await until(() => sent.includes("DELETE /api/v1/login/r3"));   /* its window now signs nothing */
  const polls = sent.filter((s) => s === "GET /api/v1/login/r3").length;
  await until(() => opened.length === 2 && opened[1].location.href === AGENT + "/consent.html#r4");
  assert.ok(!opened[0].closed);
  done.r4 = { signature: "r4" };
  assert.deepStrictEqual((await fourth).ok, { signature: "r4" });
  assert.strictEqual(sent.filter((s) => s === "GET /api/v1/login/r3").length, polls);

  /* One after the other: nothing is replaced. */
  done.r5 = { signature: "r5" };
  assert.deepStrictEqual(await A.authenticate("Y2hhbGxlbmdlNQ==", CONSENT), { signature: "r5" });
  assert.ok(!sent.includes("DELETE /api/v1/login/r4") && !sent.includes("DELETE /api/v1/login/r5"));
  console.log("sdk consent flow: all checks passed");
})().catch((e) => { console.error(e); process.exit(1); });
