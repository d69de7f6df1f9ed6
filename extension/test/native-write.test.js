// The service worker's native-messaging write (background/native-write.js): a Blob the
// bridge could not PUT is sent whole, in order, for the partition its token names,
// and only for a live token from the bridge page.
import assert from "node:assert/strict";
import { test } from "node:test";

import { NATIVE_WRITE, nativeWriteHandler } from "../background/native-write.js";
import { BRIDGE_PATH } from "../background/tickets.js";
import { hostExited } from "../shared/errors.js";

const BASE = "chrome-extension://abc/";
const runtime = { getURL: (path = "") => BASE + path };
const CONTEXT = { partition: { top_site: "https://a.example", origin: "https://a.example" }, user_activation: false, trusted: false };
const SHA = "ab".repeat(32);

/** A link that answers like a host: `fail(method, n)` may refuse the n-th such call. */
function fakeLink(fail = () => null) {
  const sent = [];
  const counts = {};
  return {
    sent,
    send(message, { onReply }) {
      sent.push(message);
      counts[message.method] = (counts[message.method] ?? 0) + 1;
      const error = fail(message.method, counts[message.method]);
      const results = { "cos.write.begin": { upload_id: "u1" }, "cos.write.chunk": {}, "cos.write.commit": { model: { sha256: SHA } } };
      queueMicrotask(() => onReply(error ? { id: message.id, ok: false, error } : { id: message.id, ok: true, result: results[message.method] }));
    },
    notify(message) {
      sent.push(message);
    },
  };
}

function fakeTickets(size) {
  const live = new Set(["token"]);
  return { takeFallback: (token) => (live.delete(token) ? { sha256: SHA, size, context: CONTEXT } : null) };
}

async function hand(handler, { blob, token = "token", url = BASE + BRIDGE_PATH }) {
  let verdict;
  const answered = new Promise((resolve) => {
    const port = { postMessage: (message) => resolve((verdict = message)) };
    handler({ data: { type: NATIVE_WRITE, token, blob }, source: { url }, ports: [port], waitUntil: () => {} });
  });
  await answered;
  return verdict;
}

function setup(size, fail) {
  const link = fakeLink(fail);
  let n = 0;
  const handler = nativeWriteHandler({ link, nextId: () => `1.${++n}`, ready: Promise.resolve(), tickets: fakeTickets(size), runtime });
  return { link, handler };
}

test("a Blob goes whole, in order, for the token's partition and SHA-256", async () => {
  const bytes = new Uint8Array((16 << 20) + 5).map((_, i) => i % 251);
  const { link, handler } = setup(bytes.length);
  const verdict = await hand(handler, { blob: new Blob([bytes]) });
  assert.deepEqual(verdict, { result: { model: { sha256: SHA } } });
  assert.deepEqual(link.sent.map((m) => m.method), ["cos.write.begin", "cos.write.chunk", "cos.write.chunk", "cos.write.commit"]);
  assert.ok(link.sent.every((m) => m.context === CONTEXT));
  assert.deepEqual(link.sent[0].params, { sha256: SHA, size: bytes.length });
  const chunks = link.sent.filter((m) => m.method === "cos.write.chunk");
  assert.deepEqual(chunks.map((m) => m.params.offset), [0, 16 << 20]);
  const sentBytes = Buffer.concat(chunks.map((m) => Buffer.from(m.params.data, "base64")));
  assert.ok(sentBytes.equals(Buffer.from(bytes)));
});

test("only a live token, from the bridge page, for a Blob of the announced size", async () => {
  const blob = new Blob([new Uint8Array(10)]);
  assert.deepEqual(await hand(setup(10).handler, { blob, url: BASE + "popup/popup.html" }), { error: "no such write" });
  assert.deepEqual(await hand(setup(10).handler, { blob, token: "other" }), { error: "no such write" });
  assert.deepEqual(await hand(setup(11).handler, { blob }), { error: "no such write" });
  const { link, handler } = setup(10);
  assert.ok("result" in (await hand(handler, { blob })));
  assert.deepEqual(await hand(handler, { blob }), { error: "no such write" }); // spent
  assert.equal(link.sent.filter((m) => m.method === "cos.write.begin").length, 1);
});

test("the host's refusal is the verdict, and the upload is aborted", async () => {
  const refusal = { code: "quota_exceeded", message: "over quota", details: {} };
  const { link, handler } = setup(10, (method) => (method === "cos.write.chunk" ? refusal : null));
  const verdict = await hand(handler, { blob: new Blob([new Uint8Array(10)]) });
  assert.equal(verdict.failure.code, "quota_exceeded");
  assert.equal(verdict.failure.name, "QuotaExceededError");
  assert.equal(link.sent.at(-1).method, "cos.write.abort");
});

test("a begin that meets the host's exit is asked once more of the next host", async () => {
  const { link, handler } = setup(10, (method, n) => (method === "cos.write.begin" && n === 1 ? hostExited("Native host has exited.") : null));
  const verdict = await hand(handler, { blob: new Blob([new Uint8Array(10)]) });
  assert.ok("result" in verdict, JSON.stringify(verdict));
  assert.equal(link.sent.filter((m) => m.method === "cos.write.begin").length, 2);
});
