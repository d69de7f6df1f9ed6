// A relay's whole-Blob write (background/channel.js BLOB_WRITE): where runtime ports
// carry Blobs (Firefox) the service worker sends the chunks itself, for the port's own
// partition; where they carry JSON (Chromium) the request is refused so that the relay
// sends the chunks instead; a caller that goes away aborts the upload.
import assert from "node:assert/strict";
import { test } from "node:test";

import { BLOB_WRITE, Channel } from "../background/channel.js";
import { blobUploader } from "../background/native-write.js";
import { RouteTable } from "../shared/routes.js";
import { browserEvent, settle } from "./fake-browser.js";

const CONTEXT = { partition: { top_site: "https://a.example", origin: "https://a.example" }, user_activation: false, trusted: false };
const SHA = "ab".repeat(32);

/** A link that answers like a host; `hold(method)` true keeps that call unanswered
 *  until `release()`. */
function fakeLink(hold = () => false) {
  const sent = [];
  const held = [];
  const results = { "cos.write.begin": { upload_id: "u1" }, "cos.write.chunk": {}, "cos.write.commit": { model: { sha256: SHA } } };
  return {
    sent,
    send(message, { onReply }) {
      sent.push(message);
      const answer = () => onReply({ id: message.id, ok: true, result: results[message.method] });
      if (hold(message.method)) held.push(answer);
      else queueMicrotask(answer);
    },
    release: () => held.splice(0).forEach((answer) => answer()),
    notify(message) {
      sent.push(message);
    },
  };
}

/** The service worker's end of a port whose messages are `copy`-ed (structuredClone:
 *  Firefox; JSON: Chromium), and what went back to the caller. */
function setup({ copy, hold }) {
  const link = fakeLink(hold);
  let n = 0;
  const nextId = () => `1.${++n}`;
  const port = { onMessage: browserEvent(), onDisconnect: browserEvent(), received: [], postMessage: (m) => port.received.push(m) };
  const upload = blobUploader({ link, nextId });
  const uploadBlob = (context, sha256, blob, options) => upload(context, sha256, blob, { chunk: 4 << 20, inFlight: 2, ...options });
  new Channel(port, { link, routes: new RouteTable(), nextId, makeContext: () => CONTEXT, uploadBlob });
  const send = (message) => port.onMessage.fire(copy(message), port);
  return { link, port, send };
}

const json = (m) => JSON.parse(JSON.stringify(m));

test("a Blob from a port that carries Blobs goes whole, in chunks, for the port's partition", async () => {
  const bytes = new Uint8Array((8 << 20) + 7).map((_, i) => (i * 7) % 253);
  const { link, port, send } = setup({ copy: structuredClone });
  const forged = { partition: { top_site: "https://b.example", origin: "https://b.example" } };
  send({ id: 5, method: BLOB_WRITE, params: { sha256: SHA, blob: new Blob([bytes]) }, context: forged });
  await settle(60);
  assert.deepEqual(port.received, [{ id: 5, ok: true, result: { model: { sha256: SHA } } }]);
  const methods = link.sent.map((m) => m.method);
  assert.deepEqual(methods, ["cos.write.begin", "cos.write.chunk", "cos.write.chunk", "cos.write.chunk", "cos.write.commit"]);
  assert.ok(link.sent.every((m) => m.context === CONTEXT));
  assert.deepEqual(link.sent[0].params, { sha256: SHA, size: bytes.length });
  const chunks = link.sent.filter((m) => m.method === "cos.write.chunk");
  assert.deepEqual(chunks.map((m) => m.params.offset), [0, 4 << 20, 8 << 20]);
  assert.ok(Buffer.concat(chunks.map((m) => Buffer.from(m.params.data, "base64"))).equals(Buffer.from(bytes)));
});

test("a port that carries JSON delivers no Blob: refused, nothing reaches the host", async () => {
  const { link, port, send } = setup({ copy: json });
  send({ id: 6, method: BLOB_WRITE, params: { sha256: SHA, blob: new Blob([new Uint8Array(10)]) } });
  await settle();
  assert.equal(link.sent.length, 0);
  const [reply] = port.received;
  assert.equal(reply.ok, false);
  assert.equal(reply.error.code, "bad_request");
  assert.deepEqual(reply.error.details, { blob: false }); // the relay sends the chunks itself then
});

test("a caller that goes away mid-write aborts the upload and commits nothing", async () => {
  let held = 0;
  const { link, port, send } = setup({ copy: structuredClone, hold: (method) => method === "cos.write.chunk" && ++held > 1 });
  send({ id: 7, method: BLOB_WRITE, params: { sha256: SHA, blob: new Blob([new Uint8Array(16 << 20)]) } });
  await settle(60);
  port.onDisconnect.fire(port);
  link.release();
  await settle(60);
  const methods = link.sent.map((m) => m.method);
  assert.ok(!methods.includes("cos.write.commit"), methods);
  assert.ok(methods.includes("cos.write.abort"), methods);
  assert.equal(methods.filter((m) => m === "cos.write.chunk").length, 3); // none after it went away
  assert.deepEqual(port.received, []);
});
