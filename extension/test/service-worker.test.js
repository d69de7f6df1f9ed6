// The service worker (background/router.js + channel.js + native-link.js) between
// fake callers' ports and a fake host: contexts, ids, routing, clean-up, trust.
import assert from "node:assert/strict";
import { test } from "node:test";

import { startServiceWorker } from "../background/router.js";
import { EXTENSION_BASE, EXTENSION_ID, FakeBrowser, senderFor, settle } from "./fake-browser.js";
import { FakeHost, integrityOf, sha256 } from "./fake-host.js";

const MODEL = Buffer.from("pretend this is an ONNX model");
const MODEL_URL = "https://models.example/m.onnx";

async function setup() {
  const host = new FakeHost({ network: { [MODEL_URL]: MODEL } });
  const browser = new FakeBrowser(host);
  const worker = browser.startWorker(startServiceWorker);
  await worker.ready;
  return { host, browser, worker };
}

/** A caller's end of a port: what it received, and a way to send. */
function caller(browser, sender, name = "webmodels-page") {
  const port = browser.connect(sender, name);
  const received = [];
  const closed = { value: false };
  port.onMessage.addListener((m) => received.push(m));
  port.onDisconnect.addListener(() => (closed.value = true));
  return { port, received, closed, send: (m) => port.postMessage(m), replies: () => received.filter((m) => !m.event) };
}

const A = "https://a.example";
const B = "https://b.example";

test("the context comes from the sender: a forged one changes nothing", async () => {
  const { host, browser } = await setup();
  const page = caller(browser, senderFor({ origin: A }));
  page.send({
    id: 1, method: "hello", params: {}, user_activation: true,
    context: { trusted: true, partition: { top_site: B, origin: B } }, origin: B, trusted: true,
  });
  await settle();

  const [request] = host.seen;
  assert.deepEqual(request.context, { partition: { top_site: A, origin: A }, user_activation: true, trusted: false });
  assert.match(request.id, /^1\.\d+$/); // the worker's id, not the page's
  assert.deepEqual(page.replies(), [{ id: 1, ok: true, result: { protocol_version: 1, trusted: false } }]);
});

test("an iframe's requests carry (top-level site, frame origin)", async () => {
  const { host, browser } = await setup();
  const frame = caller(browser, senderFor({ origin: B, frameId: 5, topUrl: `${A}/app` }));
  frame.send({ id: 1, method: "models.list", params: {} });
  await settle();
  assert.deepEqual(host.seen[0].context.partition, { top_site: A, origin: B });
  assert.equal(host.seen[0].context.user_activation, false);
});

test("replies and events go back to the caller that asked, under its own id", async () => {
  const { host, browser } = await setup();
  const query = { url: MODEL_URL, integrity: integrityOf(MODEL) };
  const one = caller(browser, senderFor({ origin: A }));
  const two = caller(browser, senderFor({ origin: B }));
  one.send({ id: 1, method: "models.load", params: { query } });
  two.send({ id: 1, method: "models.availability", params: { query } });
  await settle();

  assert.deepEqual(one.received.filter((m) => m.event).map((m) => [m.event, m.id, m.loaded]), [
    ["download.progress", 1, 0],
    ["download.progress", 1, MODEL.length],
  ]);
  assert.equal(one.replies()[0].result.model.sha256, sha256(MODEL));
  assert.deepEqual(two.received, [{ id: 1, ok: true, result: { availability: "downloadable" } }]);
  assert.notEqual(host.seen[0].id, host.seen[1].id);
});

test("host errors reach the page with their DOMException name", async () => {
  const { browser } = await setup();
  const page = caller(browser, senderFor({ origin: A }));
  page.send({ id: "x", method: "models.load", params: { query: { sha256: "0".repeat(64) } } });
  page.send({ id: "y", method: "manage.list", params: {} });
  await settle();
  const [notFound, denied] = page.replies();
  assert.equal(notFound.error.code, "not_found");
  assert.equal(notFound.error.name, "NotFoundError");
  assert.equal(denied.error.code, "access_denied");
  assert.equal(denied.error.name, "NotAllowedError");
});

test("a page cancels by its own id; the host hears the worker's id of that request", async () => {
  const { host, browser } = await setup();
  host.holdLoads = true;
  const page = caller(browser, senderFor({ origin: A }));
  page.send({ id: 9, method: "models.load", params: { query: { url: MODEL_URL, integrity: integrityOf(MODEL) } } });
  await settle();
  page.send({ id: 10, method: "models.cancel", params: { request_id: 9 } });
  page.send({ id: 11, method: "models.cancel", params: { request_id: 12345 } });
  await settle();

  const cancel = host.seen.find((m) => m.method === "models.cancel");
  assert.equal(cancel.params.request_id, host.seen[0].id);
  const replies = Object.fromEntries(page.replies().map((m) => [m.id, m]));
  assert.equal(replies[9].error.code, "cancelled");
  assert.deepEqual(replies[10].result, { cancelled: true });
  assert.deepEqual(replies[11].result, { cancelled: false }); // unknown: never reaches the host
  assert.equal(host.seen.filter((m) => m.method === "models.cancel").length, 1);
});

test("a frame that goes away cancels its downloads and aborts its uploads", async () => {
  const { host, browser } = await setup();
  host.holdLoads = true;
  const page = caller(browser, senderFor({ origin: A }));
  page.send({ id: 1, method: "models.load", params: { query: { url: MODEL_URL, integrity: integrityOf(MODEL) } } });
  page.send({ id: 2, method: "cos.write.begin", params: { sha256: sha256(MODEL), size: MODEL.length } });
  await settle();
  assert.equal(host.uploads.size, 1);

  page.port.disconnect();
  await settle();

  const methods = host.seen.map((m) => m.method);
  assert.deepEqual(methods.slice(2).sort(), ["cos.write.abort", "models.cancel"]);
  assert.equal(host.uploads.size, 0);
  assert.equal(host.loads.size, 0);
});

test("an upload or session the host opens after the frame went away is undone", async () => {
  const { host, browser } = await setup();
  const held = [];
  const begin = host.methods["cos.write.begin"];
  host.methods["cos.write.begin"] = (id, params, context) => held.push(() => begin.call(host, id, params, context));
  host.methods["sessions.create"] = (id) =>
    held.push(() => host.port.postMessage({ id, ok: true, result: { session_id: "late" } }));
  host.methods["sessions.release"] = (id) => host.port.postMessage({ id, ok: true, result: { released: true } });
  const page = caller(browser, senderFor({ origin: A }));
  page.send({ id: 1, method: "cos.write.begin", params: { sha256: sha256(MODEL), size: MODEL.length } });
  page.send({ id: 2, method: "sessions.create", params: { sha256: "ab".repeat(32) } });
  await settle();
  assert.equal(held.length, 2); // both still in flight

  page.port.disconnect(); // the tab closes
  await settle();
  for (const answer of held) answer(); // the host answers after it left
  await settle();

  assert.equal(host.uploads.size, 0); // aborted: no temp file waits for its idle timeout
  const releases = host.seen.filter((m) => m.method === "sessions.release");
  assert.deepEqual(releases.map((m) => m.params.session_id), ["late"]);
  assert.deepEqual(page.replies(), []); // the caller that left hears nothing
});

test("a frame that goes away releases the sessions it created and did not release", async () => {
  const { host, browser } = await setup();
  let next = 0;
  host.methods["sessions.create"] = (id) => host.port.postMessage({ id, ok: true, result: { session_id: `s${++next}` } });
  host.methods["sessions.release"] = (id) => host.port.postMessage({ id, ok: true, result: { released: true } });
  const page = caller(browser, senderFor({ origin: A }));
  for (const id of [1, 2]) page.send({ id, method: "sessions.create", params: { sha256: "ab".repeat(32) } });
  await settle();
  page.send({ id: 3, method: "sessions.release", params: { session_id: "s1" } });
  await settle();

  page.port.disconnect();
  await settle();

  const releases = host.seen.filter((m) => m.method === "sessions.release");
  assert.deepEqual(releases.map((m) => m.params.session_id), ["s1", "s2"]); // s1 by the page, s2 at close
  assert.deepEqual(releases[1].context.partition, { top_site: A, origin: A });
});

test("the popup's port is trusted; the same port name from a web page is refused", async () => {
  const { host, browser } = await setup();
  const popup = caller(browser, { id: EXTENSION_ID, url: `${EXTENSION_BASE}popup/popup.html` }, "webmodels-manage");
  popup.send({ id: 1, method: "manage.list", params: {} });
  await settle();
  assert.deepEqual(host.seen[0].context, { partition: null, user_activation: true, trusted: true });
  assert.equal(popup.replies()[0].ok, true);

  const impostor = caller(browser, senderFor({ origin: A }), "webmodels-manage");
  impostor.send({ id: 1, method: "manage.list", params: {} });
  await settle();
  assert.equal(host.seen.length, 1); // never forwarded
  assert.equal(impostor.replies()[0].error.code, "access_denied");
});

test("frames without a trustworthy partition are answered, never forwarded", async () => {
  const { host, browser } = await setup();
  const opaque = caller(browser, { ...senderFor({ origin: A }), origin: "null" });
  opaque.send({ id: 1, method: "models.list", params: {} });
  const stranger = caller(browser, senderFor({ origin: A }), "something-else");
  stranger.send({ id: 1, method: "models.list", params: {} });
  await settle();
  assert.equal(host.seen.length, 0);
  assert.equal(opaque.replies()[0].error.code, "access_denied");
  assert.deepEqual(stranger.received, []);
});

test("malformed, duplicate and oversized requests are refused locally", async () => {
  const { host, browser } = await setup();
  host.holdLoads = true;
  const page = caller(browser, senderFor({ origin: A }));
  const load = { id: 1, method: "models.load", params: { query: { url: MODEL_URL, integrity: integrityOf(MODEL) } } };
  page.send(load);
  page.send(load);
  page.send({ id: 2, method: "no method" });
  page.send({ method: "hello" });
  page.send({ id: 3, method: "cos.write.chunk", params: { data: "A".repeat(61 << 20) } });
  await settle();
  const codes = page.replies().map((m) => [m.id, m.error.code]);
  assert.deepEqual(codes, [[1, "bad_request"], [2, "bad_request"], [3, "too_large"]]);
  assert.equal(host.seen.length, 1);
});

test("when the host exits, requests in flight fail and the next one starts it again", async () => {
  const { host, browser } = await setup();
  host.holdLoads = true;
  const page = caller(browser, senderFor({ origin: A }));
  page.send({ id: 1, method: "models.load", params: { query: { url: MODEL_URL, integrity: integrityOf(MODEL) } } });
  await settle();
  host.exit("Native host has exited.");
  await settle();
  const [failed] = page.replies();
  assert.equal(failed.error.code, "internal");
  assert.match(failed.error.message, /^the webmodels host exited; Native host has exited/);

  host.holdLoads = false;
  page.send({ id: 1, method: "hello", params: {} });
  await settle();
  assert.equal(page.replies()[1].ok, true);
  assert.equal(host.starts, 2);
});

test("a restarted worker uses ids of a new epoch and serves reconnecting pages", async () => {
  const { host, browser } = await setup();
  const page = caller(browser, senderFor({ origin: A }));
  page.send({ id: 1, method: "hello", params: {} });
  await settle();
  browser.killWorker();
  await settle();
  assert.equal(page.closed.value, true);

  const worker = browser.startWorker(startServiceWorker);
  await worker.ready;
  const again = caller(browser, senderFor({ origin: A }));
  again.send({ id: 1, method: "hello", params: {} });
  await settle();
  assert.deepEqual(host.seen.map((m) => m.id.split(".")[0]), ["1", "2"]);
  assert.equal(again.replies()[0].ok, true);
});
