// The fast byte path's tickets (background/tickets.js) and the service worker's use
// of them: a page gets a ticket for `models.open`, never the loopback URL; only the
// extension's bridge page in the same tab can redeem it, once, in time.
import assert from "node:assert/strict";
import { test } from "node:test";

import { startServiceWorker } from "../background/router.js";
import { BRIDGE_PATH, REDEEM, Tickets } from "../background/tickets.js";
import { EXTENSION_BASE, EXTENSION_ID, FakeBrowser, senderFor, settle } from "./fake-browser.js";
import { FakeHost } from "./fake-host.js";

const runtime = { id: EXTENSION_ID, getURL: (path = "") => EXTENSION_BASE + path };
const BRIDGE = EXTENSION_BASE + BRIDGE_PATH;
const OPENED = { url: "http://127.0.0.1:4000/m/token", size: 1234, expires_in: 30 };
const bridgeIn = (tabId) => ({ id: EXTENSION_ID, url: BRIDGE, tab: { id: tabId }, frameId: 3 });

test("a ticket goes to the page; the URL only to the bridge of that tab, once", () => {
  const tickets = new Tickets({ random: () => "t1" });
  const given = tickets.issue(OPENED, { tabId: 7, origin: "https://a.example" });
  assert.deepEqual(given, { ticket: "t1", size: 1234 }); // nothing names the extension
  assert.ok(!JSON.stringify(given).includes("127.0.0.1"));
  assert.deepEqual(tickets.redeem("t1", bridgeIn(7), runtime), {
    url: OPENED.url, origin: "https://a.example", size: 1234,
  });
  assert.equal(tickets.redeem("t1", bridgeIn(7), runtime), null); // spent
});

test("other tabs, other senders, unknown and expired tickets get nothing", () => {
  let now = 0;
  let n = 0;
  const tickets = new Tickets({ now: () => now, random: () => `t${++n}` });
  const asker = { tabId: 7, origin: "https://a.example" };
  const page = { id: EXTENSION_ID, url: "https://a.example/page.html", tab: { id: 7 } };
  const other = { ...bridgeIn(7), id: "another-extension" };
  for (const sender of [bridgeIn(8), page, other, { ...bridgeIn(7), url: `${EXTENSION_BASE}popup/popup.html` }]) {
    const { ticket } = tickets.issue(OPENED, asker);
    assert.equal(tickets.redeem(ticket, sender, runtime), null);
    assert.equal(tickets.redeem(ticket, bridgeIn(7), runtime), null); // a failed try spends it
  }
  assert.equal(tickets.redeem("nope", bridgeIn(7), runtime), null);
  assert.equal(tickets.redeem({ ticket: 1 }, bridgeIn(7), runtime), null);
  const { ticket } = tickets.issue(OPENED, asker);
  now = 31_000;
  assert.equal(tickets.redeem(ticket, bridgeIn(7), runtime), null);
  assert.equal(tickets.size, 0);
});

test("through the service worker: the page's reply has a ticket and no URL", async () => {
  const host = new FakeHost();
  const browser = new FakeBrowser(host);
  const worker = browser.startWorker(startServiceWorker);
  await worker.ready;
  const digest = host.store(Buffer.from("some model bytes"), "https://a.example https://a.example");
  const port = browser.connect(senderFor({ origin: "https://a.example" }), "webmodels-page");
  const received = [];
  port.onMessage.addListener((m) => received.push(m));
  port.postMessage({ id: 1, method: "models.open", params: { sha256: digest } });
  await settle();
  const [reply] = received;
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.deepEqual(Object.keys(reply.result).sort(), ["size", "ticket"]);
  assert.ok(!JSON.stringify(reply).includes("secret"));
  assert.ok(!JSON.stringify(reply).includes(EXTENSION_ID)); // the bridge is the relay's business
  // The bridge of the same tab redeems it through runtime.onMessage.
  let answer;
  browser.api.runtime.onMessage.fire({ type: REDEEM, ticket: reply.result.ticket }, bridgeIn(7), (r) => (answer = r));
  assert.equal(answer.origin, "https://a.example");
  assert.match(answer.url, /^http:\/\/127\.0\.0\.1:9\/m\/secret-/);
});

test("a write's ticket gives its bridge a fallback token: the partition and SHA-256, once", () => {
  let now = 0;
  let n = 0;
  const tickets = new Tickets({ now: () => now, random: () => `r${++n}` });
  const context = { partition: { top_site: "https://a.example", origin: "https://a.example" }, user_activation: false, trusted: false };
  const write = { sha256: "ab".repeat(32), context };
  const { ticket } = tickets.issue({ ...OPENED, url: "http://127.0.0.1:4000/u/token" }, { tabId: 7, origin: "https://a.example", write });
  const redeemed = tickets.redeem(ticket, bridgeIn(7), runtime);
  assert.equal(typeof redeemed.fallback, "string");
  assert.notEqual(redeemed.fallback, ticket);
  assert.equal(tickets.takeFallback("nope"), null);
  assert.deepEqual(tickets.takeFallback(redeemed.fallback), { sha256: write.sha256, size: 1234, context });
  assert.equal(tickets.takeFallback(redeemed.fallback), null); // spent
  // A read's ticket has none; a fallback token expires.
  const read = tickets.issue(OPENED, { tabId: 7, origin: "https://a.example" });
  assert.equal(tickets.redeem(read.ticket, bridgeIn(7), runtime).fallback, undefined);
  const again = tickets.issue(OPENED, { tabId: 7, origin: "https://a.example", write });
  const token = tickets.redeem(again.ticket, bridgeIn(7), runtime).fallback;
  now += 31 * 60_000;
  assert.equal(tickets.takeFallback(token), null);
});
