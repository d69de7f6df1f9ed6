// The page API end to end inside Node: page/*.js in a MAIN-world vm context,
// content/relay.js in an ISOLATED one, the real service worker modules, and a fake
// host behind them.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";

import { startServiceWorker } from "../background/router.js";
import { FakeBrowser, openFrame, settle } from "./fake-browser.js";
import { FakeHost, integrityOf, sha256 } from "./fake-host.js";

const A = "https://a.example";
const B = "https://b.example";
const MODEL = randomBytes(2 * 1024 * 1024 + 123); // several 720 KiB reads
const MODEL_URL = "https://models.example/m.onnx";
const QUERY = { url: MODEL_URL, integrity: integrityOf(MODEL) };
const hash = (bytes) => ({ algorithm: "SHA-256", value: sha256(bytes) });

async function stack(frameOptions = {}) {
  const host = new FakeHost({ network: { [MODEL_URL]: MODEL } });
  const browser = new FakeBrowser(host);
  await browser.startWorker(startServiceWorker).ready;
  return { host, browser, ...openFrame(browser, frameOptions) };
}

async function bytesOf(blobOrBuffer) {
  const buffer = typeof blobOrBuffer.arrayBuffer === "function" ? await blobOrBuffer.arrayBuffer() : blobOrBuffer;
  return Buffer.from(buffer);
}

test("the APIs exist in secure contexts only", async () => {
  const secure = await stack();
  assert.equal(typeof secure.navigator.crossOriginStorage.requestFileHandle, "function");
  assert.deepEqual(Object.keys(secure.webmodels).sort(), ["availability", "cache", "connectWorker", "list", "load", "workerScript"]);
  assert.equal(Object.getOwnPropertySymbols(secure.main).length, 0); // internals removed

  const insecure = await stack({ origin: "http://a.example" });
  assert.equal(insecure.navigator.crossOriginStorage, undefined);
  assert.equal(insecure.window.webmodels, undefined);
});

test("COS: a look-up of an absent file rejects with NotFoundError", async () => {
  const { navigator } = await stack();
  await assert.rejects(navigator.crossOriginStorage.requestFileHandle(hash(MODEL)), {
    name: "NotFoundError",
    webmodelsCode: "not_found",
  });
  await assert.rejects(navigator.crossOriginStorage.requestFileHandles([hash(MODEL)]), { name: "NotFoundError" });
});

test("COS: create, write in several pieces, close; a look-up then gives the same bytes", async () => {
  const { navigator, host } = await stack();
  const data = randomBytes(20 * 1024 * 1024 + 5); // three upload chunks
  const handle = await navigator.crossOriginStorage.requestFileHandle(hash(data), { create: true, origins: "*" });
  assert.equal(handle.kind, "file");
  assert.equal(handle.name, sha256(data));
  const writable = await handle.createWritable();
  await writable.write(new Blob([data.subarray(0, 1000)]));
  await writable.write(new Uint8Array(data.subarray(1000, 5000)));
  await writable.write({ type: "write", data: data.subarray(5000).buffer.slice(data.byteOffset + 5000, data.byteOffset + data.length) });
  await writable.close();

  assert.deepEqual([...host.blobs.get(sha256(data)).sites], [`${A} ${A}`]);
  const uploads = host.seen.filter((m) => m.method === "cos.write.chunk");
  assert.deepEqual(uploads.map((m) => m.params.offset), [0, 8 << 20, 16 << 20]);

  const [found] = await navigator.crossOriginStorage.requestFileHandles([hash(data)]);
  const file = await found.getFile();
  assert.ok(file instanceof File);
  assert.equal(file.name, sha256(data));
  assert.ok((await bytesOf(file)).equals(data));
});

test("COS: bytes that do not match the hash are refused with integrity_mismatch", async () => {
  const { navigator, host } = await stack();
  const handle = await navigator.crossOriginStorage.requestFileHandle(hash(Buffer.from("expected")), { create: true });
  const writable = await handle.createWritable();
  await writable.write(new Blob(["something else"]));
  await assert.rejects(writable.close(), { name: "DataError", webmodelsCode: "integrity_mismatch" });
  assert.equal(host.blobs.size, 0);
  assert.equal(host.uploads.size, 0);
});

test("COS: argument checks", async () => {
  const { navigator } = await stack();
  const cos = navigator.crossOriginStorage;
  await assert.rejects(cos.requestFileHandle({ algorithm: "SHA-1", value: "ab" }), { name: "NotSupportedError" });
  await assert.rejects(cos.requestFileHandle({ algorithm: "SHA-256", value: "xyz" }), { name: "TypeError" });
  await assert.rejects(cos.requestFileHandle(null), { name: "TypeError" });
  await assert.rejects(cos.requestFileHandles(5), { name: "TypeError" });
  const upper = await cos.requestFileHandle({ algorithm: "sha-256", value: sha256(MODEL).toUpperCase() }, { create: true });
  assert.equal(upper.name, sha256(MODEL));
  const writable = await upper.createWritable();
  await assert.rejects(writable.write({ type: "seek", position: 0 }), { name: "NotSupportedError" });
});

test("COS: a look-up handle cannot write", async () => {
  const { navigator, host } = await stack();
  host.store(MODEL, `${A} ${A}`);
  const handle = await navigator.crossOriginStorage.requestFileHandle(hash(MODEL));
  await assert.rejects(handle.createWritable(), { name: "NotAllowedError" });
});

test("COS: several writes and look-ups at once", async () => {
  const { navigator, host } = await stack();
  const files = Array.from({ length: 7 }, (_, i) => randomBytes(1000 + i));
  const cos = navigator.crossOriginStorage;
  let open = 0;
  let mostOpen = 0;
  const begin = host.methods["cos.write.begin"];
  const commit = host.methods["cos.write.commit"];
  host.methods["cos.write.begin"] = function (...args) {
    mostOpen = Math.max(mostOpen, ++open);
    return begin.apply(this, args);
  };
  host.methods["cos.write.commit"] = function (...args) {
    open--;
    return commit.apply(this, args);
  };
  await Promise.all(files.map(async (data) => {
    const writable = await (await cos.requestFileHandle(hash(data), { create: true })).createWritable();
    await writable.write(data);
    await writable.close();
  }));
  assert.ok(mostOpen <= 4, `at most 4 uploads open at once (the host's limit), saw ${mostOpen}`);
  const read = await Promise.all(files.map(async (data) => bytesOf(await (await cos.requestFileHandle(hash(data))).getFile())));
  read.forEach((bytes, i) => assert.ok(bytes.equals(files[i])));
});

test("webmodels.load: progress through monitor, then the bytes three ways", async () => {
  const { webmodels } = await stack();
  const progress = [];
  const model = await webmodels.load(QUERY, {
    monitor(m) {
      m.addEventListener("downloadprogress", (e) => progress.push([e.type, e.loaded, e.total, e.lengthComputable]));
    },
  });
  assert.deepEqual(progress, [
    ["downloadprogress", 0, MODEL.length, true],
    ["downloadprogress", MODEL.length, MODEL.length, true],
  ]);
  assert.equal(model.info.sha256, sha256(MODEL));
  assert.ok(Object.isFrozen(model.info));
  assert.ok((await bytesOf(await model.arrayBuffer())).equals(MODEL));
  assert.ok((await bytesOf(await model.blob())).equals(MODEL));
  const chunks = [];
  for await (const chunk of model.stream()) chunks.push(Buffer.from(chunk));
  assert.ok(chunks.length >= 3);
  assert.ok(Buffer.concat(chunks).equals(MODEL));
  assert.equal(await webmodels.availability({ sha256: sha256(MODEL) }), "available");
  assert.deepEqual((await webmodels.list()).map((m) => m.sha256), [sha256(MODEL)]);
});

test("webmodels: errors are DOMExceptions with the host's code", async () => {
  const { webmodels } = await stack();
  const rejection = webmodels.load({ sha256: "0".repeat(64) });
  await assert.rejects(rejection, (error) => {
    assert.ok(error instanceof DOMException);
    assert.equal(error.name, "NotFoundError");
    assert.equal(error.webmodelsCode, "not_found");
    assert.match(error.message, /\(webmodels: not_found\)$/);
    return true;
  });
  await assert.rejects(webmodels.load("not an object"), { name: "TypeError" });
  await assert.rejects(webmodels.availability({ size: 1n }), { name: "TypeError" });
});

test("aborting a load cancels it on the host and rejects with AbortError", async () => {
  const { webmodels, host } = await stack();
  host.holdLoads = true;
  const controller = new AbortController();
  const loading = webmodels.load(QUERY, { signal: controller.signal });
  await settle();
  controller.abort();
  await assert.rejects(loading, { name: "AbortError" });
  await settle();
  const load = host.seen.find((m) => m.method === "models.load");
  const cancel = host.seen.find((m) => m.method === "models.cancel");
  assert.equal(cancel.params.request_id, load.id);
  assert.equal(host.loads.size, 0);

  const early = webmodels.load(QUERY, { signal: AbortSignal.abort() });
  await assert.rejects(early, { name: "AbortError" });
});

test("a cross-origin iframe's load is credited to (top-level site, its origin)", async () => {
  const { webmodels, host } = await stack({ origin: B, frameId: 2, topUrl: `${A}/app` });
  await webmodels.load(QUERY);
  assert.deepEqual([...host.blobs.get(sha256(MODEL)).sites], [`${A} ${B}`]);
});

test("a worker restart mid-request: reads and loads are retried, uploads fail cleanly", async () => {
  const { webmodels, navigator, host, browser } = await stack();
  host.holdLoads = true;
  const loading = webmodels.load(QUERY);
  const handle = await navigator.crossOriginStorage.requestFileHandle(hash(MODEL), { create: true });
  const writable = await handle.createWritable();
  await writable.write(MODEL);
  host.methods["cos.write.chunk"] = () => {}; // the chunk never gets an answer
  const closed = assert.rejects(writable.close(), { name: "UnknownError", webmodelsCode: "internal", message: /restarted/ });
  await settle();

  host.holdLoads = false;
  browser.killWorker(); // the page's next message starts a new one
  await settle();

  const model = await loading;
  assert.equal(model.info.sha256, sha256(MODEL));
  await closed;
  const epochs = new Set(host.seen.filter((m) => m.method === "models.load").map((m) => m.id.split(".")[0]));
  assert.deepEqual([...epochs], ["1", "2"]);
});

test("a host exit mid-load rejects with internal, and the next load works", async () => {
  const { webmodels, host } = await stack();
  host.holdLoads = true;
  const loading = webmodels.load(QUERY);
  await settle();
  host.exit("Native host has exited.");
  await assert.rejects(loading, { name: "UnknownError", webmodelsCode: "internal", message: /the webmodels host exited/ });
  host.holdLoads = false;
  assert.equal((await webmodels.load(QUERY)).info.size, MODEL.length);
});
