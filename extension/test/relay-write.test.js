// A write the bridge cannot carry, sent by content/relay.js through native messaging:
// where runtime ports carry Blobs (Firefox) as one `cos.write.blob` request with the
// Blob by reference; where they carry JSON (Chromium) that request is refused and the
// relay sends the chunks itself, from then on straight away. The page gets the same
// verdict either way.
import assert from "node:assert/strict";
import { test } from "node:test";
import vm from "node:vm";

import { FakeWindow, browserEvent, runScript, settle } from "./fake-browser.js";

const ORIGIN = "https://a.example";
const SHA = "cd".repeat(32);
const MODEL = { model: { sha256: SHA } };

/** A relay (no document: its bridge cannot start) whose runtime ports copy messages
 *  with `copy` and are answered by `answer(message)` -> reply fields. */
function relayIn(copy, answer) {
  const window = new FakeWindow(ORIGIN);
  const sent = [];
  const connect = ({ name }) => {
    const port = { name, onMessage: browserEvent(), onDisconnect: browserEvent() };
    port.postMessage = (message) => {
      const m = copy(message);
      sent.push(m);
      setImmediate(() => port.onMessage.fire({ id: m.id, ...answer(m) }, port));
    };
    return port;
  };
  const context = vm.createContext({
    window,
    navigator: { userActivation: { isActive: false } },
    setTimeout,
    clearTimeout,
    btoa,
    chrome: { runtime: { connect, getURL: (path = "") => `moz-extension://uuid/${path}` } },
  });
  runScript("content/relay.js", context);
  const write = (ticket, blob) =>
    window.postMessage({ __webmodels: 1, dir: "to-bridge", ticket, blob, sha256: SHA }, ORIGIN);
  const verdicts = () => window.posted.filter((p) => p.data.dir === "from-bridge").map((p) => p.data);
  return { sent, write, verdicts };
}

function hostLike(m) {
  if (m.method === "cos.write.begin") return { ok: true, result: { upload_id: "u1" } };
  if (m.method === "cos.write.commit") return { ok: true, result: MODEL };
  return { ok: true, result: {} };
}

test("where ports carry Blobs, the Blob goes by reference in one request", async () => {
  const { sent, write, verdicts } = relayIn(structuredClone, (m) =>
    m.method === "cos.write.blob" ? { ok: true, result: MODEL } : { ok: false, error: { code: "internal" } });
  const blob = new Blob([new Uint8Array(3 << 20)]);
  write("t1", blob);
  await settle(60);
  assert.deepEqual(sent.map((m) => m.method), ["cos.write.blob"]);
  assert.equal(sent[0].params.sha256, SHA);
  assert.equal(Object.prototype.toString.call(sent[0].params.blob), "[object Blob]");
  assert.equal(sent[0].params.blob.size, blob.size);
  assert.deepEqual(verdicts(), [{ __webmodels: 1, dir: "from-bridge", ticket: "t1", result: MODEL }]);
});

test("where ports carry JSON, the refused request gives way to chunks, then chunks only", async () => {
  const json = (m) => JSON.parse(JSON.stringify(m));
  const refuse = { ok: false, error: { code: "bad_request", message: "no Blob", details: { blob: false } } };
  const { sent, write, verdicts } = relayIn(json, (m) => (m.method === "cos.write.blob" ? refuse : hostLike(m)));
  write("t1", new Blob([new Uint8Array((16 << 20) + 1)]));
  await settle(80);
  write("t2", new Blob([new Uint8Array(5)]));
  await settle(80);
  const methods = sent.map((m) => m.method);
  assert.deepEqual(methods, [
    "cos.write.blob", "cos.write.begin", "cos.write.chunk", "cos.write.chunk", "cos.write.commit",
    "cos.write.begin", "cos.write.chunk", "cos.write.commit",
  ]);
  assert.deepEqual(verdicts().map((v) => [v.ticket, v.result]), [["t1", MODEL], ["t2", MODEL]]);
});

test("the host's own refusal of a Blob write reaches the page as its verdict", async () => {
  const mismatch = { ok: false, error: { code: "integrity_mismatch", message: "not those bytes", details: {} } };
  const { sent, write, verdicts } = relayIn(structuredClone, (m) => (m.method === "cos.write.blob" ? mismatch : hostLike(m)));
  write("t1", new Blob([new Uint8Array(10)]));
  await settle(60);
  assert.deepEqual(sent.map((m) => m.method), ["cos.write.blob"]); // not sent again as chunks
  assert.equal(verdicts()[0].failure.code, "integrity_mismatch");
});
