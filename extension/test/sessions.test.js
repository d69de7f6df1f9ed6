// Host sessions through the page API (page/sessions.js) inside Node: the page and
// relay in their vm contexts, the real service worker modules, and the fake host
// taught sessions.* here (PROTOCOL.md: tensors {type, dims, data} with base64
// little-endian data, or a JSON array for "string").
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";

import { startServiceWorker } from "../background/router.js";
import { FakeBrowser, openFrame, settle } from "./fake-browser.js";
import { FakeHost, integrityOf, sha256 } from "./fake-host.js";

const MODEL = randomBytes(4096);
const MODEL_URL = "https://models.example/echo.onnx";
const QUERY = { url: MODEL_URL, integrity: integrityOf(MODEL) };
const tag = (value) => Object.prototype.toString.call(value).slice(8, -1);

// Every element type: the page's TypedArray, and DataView's little-endian writer.
const TYPES = {
  float32: [Float32Array, "setFloat32", [1.5, -0, 3.4e38, Number.NaN]],
  float64: [Float64Array, "setFloat64", [Math.PI, -1e-300, Infinity, 0]],
  float16: [Uint16Array, "setUint16", [0x3c00, 0xc000, 0x7bff, 0x0001]], // bit patterns
  int8: [Int8Array, "setInt8", [-128, 127, 0, -1]],
  uint8: [Uint8Array, "setUint8", [0, 255, 1, 128]],
  int16: [Int16Array, "setInt16", [-32768, 32767, 256, -2]],
  uint16: [Uint16Array, "setUint16", [65535, 0, 258, 1]],
  int32: [Int32Array, "setInt32", [-(2 ** 31), 2 ** 31 - 1, 65536, -3]],
  uint32: [Uint32Array, "setUint32", [2 ** 32 - 1, 0, 16777216, 7]],
  int64: [BigInt64Array, "setBigInt64", [-(2n ** 63n), 2n ** 63n - 1n, 1n << 40n, -5n]],
  uint64: [BigUint64Array, "setBigUint64", [2n ** 64n - 1n, 0n, 1n << 50n, 9n]],
  bool: [Uint8Array, "setUint8", [1, 0, 0, 1]],
};

function littleEndian(type, values) {
  const [array, setter] = TYPES[type];
  const view = new DataView(new ArrayBuffer(values.length * array.BYTES_PER_ELEMENT));
  values.forEach((v, i) => view[setter](i * array.BYTES_PER_ELEMENT, v, true));
  return Buffer.from(view.buffer);
}

/** Teaches `host` sessions.*: every session echoes each feed `x` as output `x_out`
 *  (decoded to bytes and encoded again, as a real host would). `host.failRun`
 *  makes the next run fail with that code. */
function addSessions(host, { inputs, outputs }) {
  host.sessions = new Map();
  host.compiled = new Set();
  host.failRun = null;
  let next = 0;
  const keyOf = (context) => `${context.partition.top_site} ${context.partition.origin}`;
  const reply = (id, result) => host.port.postMessage({ id, ok: true, result });
  const fail = (id, code, message = code) => host.port.postMessage({ id, ok: false, error: { code, message, details: {} } });
  host.methods["sessions.create"] = (id, params, context) => {
    const blob = host.blobs.get(params.sha256);
    if (!blob?.sites.has(keyOf(context))) return fail(id, "not_found", "no such model is available to this site");
    const sessionId = `s${++next}`;
    host.sessions.set(sessionId, { key: keyOf(context), params });
    const hit = host.compiled.has(params.sha256);
    host.compiled.add(params.sha256);
    reply(id, { session_id: sessionId, provider: "CPUExecutionProvider", inputs, outputs, compiled_cache_hit: hit });
  };
  host.methods["sessions.run"] = (id, { session_id, feeds, fetches }, context) => {
    const session = host.sessions.get(session_id);
    if (!session || session.key !== keyOf(context)) return fail(id, "session_not_found", "no such session");
    if (host.failRun) {
      const code = host.failRun;
      host.failRun = null;
      return fail(id, code, `the run failed: ${code}`);
    }
    const result = {};
    for (const [name, tensor] of Object.entries(feeds)) {
      const data = tensor.type === "string" ? tensor.data : Buffer.from(tensor.data, "base64").toString("base64");
      if (!fetches || fetches.includes(`${name}_out`)) result[`${name}_out`] = { type: tensor.type, dims: tensor.dims, data };
    }
    reply(id, { outputs: result });
  };
  host.methods["sessions.release"] = (id, { session_id }, context) => {
    const session = host.sessions.get(session_id);
    if (!session || session.key !== keyOf(context)) return fail(id, "session_not_found", "no such session");
    host.sessions.delete(session_id);
    reply(id, { released: true });
  };
}

const INPUTS = [{ name: "x", type: "float32", dims: ["N", 4] }, { name: "ids", type: "int64", dims: [null] }];
const OUTPUTS = [{ name: "x_out", type: "float32", dims: ["N", 4] }, { name: "ids_out", type: "int64", dims: null }];

async function stack() {
  const host = new FakeHost({ network: { [MODEL_URL]: MODEL } });
  addSessions(host, { inputs: INPUTS, outputs: OUTPUTS });
  const browser = new FakeBrowser(host);
  await browser.startWorker(startServiceWorker).ready;
  const frame = openFrame(browser);
  const model = await frame.webmodels.load(QUERY);
  return { host, browser, model, ...frame };
}

const runs = (host) => host.seen.filter((m) => m.method === "sessions.run");

test("createSession: names, ORT Web-style metadata, provider, compile-cache hit", async () => {
  const { model, host } = await stack();
  const session = await model.createSession({ executionProviders: ["cuda", { name: "cpu" }], graphOptimizationLevel: "all" });
  const create = host.seen.find((m) => m.method === "sessions.create");
  assert.deepEqual(create.params, { sha256: sha256(MODEL), execution_providers: ["cuda", "cpu"], graph_optimization_level: "all" });
  assert.deepEqual([...session.inputNames], ["x", "ids"]);
  assert.deepEqual([...session.outputNames], ["x_out", "ids_out"]);
  assert.deepEqual(JSON.parse(JSON.stringify(session.inputMetadata)), [
    { name: "x", isTensor: true, type: "float32", shape: ["N", 4] },
    { name: "ids", isTensor: true, type: "int64", shape: [null] },
  ]);
  assert.deepEqual([...session.outputMetadata[1].shape], []); // rank unknown, as ORT Web says it
  assert.equal(session.provider, "CPUExecutionProvider");
  assert.equal(session.compiledCacheHit, false);
  assert.equal((await model.createSession()).compiledCacheHit, true);
  assert.ok(Object.isFrozen(session));
});

test("run: every element type goes out as little-endian base64 and comes back as its TypedArray", async () => {
  const { model, host } = await stack();
  const session = await model.createSession();
  const feeds = {};
  for (const [type, [array, , values]] of Object.entries(TYPES)) feeds[type] = { type, dims: [2, 2], data: array.from(values) };
  feeds.text = { type: "string", dims: [3], data: ["", "ünï", "a\u0000b"] };
  feeds.empty = { type: "float32", dims: [0, 5], data: new Float32Array(0) };
  feeds.scalar = { type: "int64", dims: [], data: new BigInt64Array([16000n]) };

  const outputs = await session.run(feeds);

  const sent = runs(host)[0].params.feeds;
  for (const [type, [array, , values]] of Object.entries(TYPES)) {
    assert.deepEqual(Buffer.from(sent[type].data, "base64"), littleEndian(type, values), type);
    const out = outputs[`${type}_out`];
    assert.equal(out.type, type);
    assert.deepEqual(out.dims, [2, 2]);
    assert.equal(tag(out.data), array.name, type);
    assert.deepEqual(Array.from(out.data), Array.from(array.from(values)), type);
  }
  assert.deepEqual(sent.text.data, ["", "ünï", "a\u0000b"]);
  assert.deepEqual(JSON.parse(JSON.stringify(outputs.text_out)), { type: "string", dims: [3], data: ["", "ünï", "a\u0000b"] });
  assert.equal(outputs.empty_out.data.length, 0);
  assert.deepEqual(outputs.empty_out.dims, [0, 5]);
  assert.deepEqual([...outputs.scalar_out.data], [16000n]);
  assert.deepEqual(outputs.scalar_out.dims, []);
});

test("run: a subarray view sends only its own elements", async () => {
  const { model, host } = await stack();
  const session = await model.createSession();
  const whole = new Float32Array([9, 1, 2, 3, 4, 9]);
  await session.run({ x: { type: "float32", dims: [1, 4], data: whole.subarray(1, 5) } });
  assert.deepEqual(Buffer.from(runs(host)[0].params.feeds.x.data, "base64"), littleEndian("float32", [1, 2, 3, 4]));
});

test("run: ort.Tensor-like feeds, GPU-held tensors, and plain arrays", async () => {
  const { model, host } = await stack();
  const session = await model.createSession();
  class Tensor { // the getters of onnxruntime-web's Tensor
    #data;
    constructor(type, data, dims) {
      this.#data = data;
      Object.assign(this, { type, dims, size: data.length, location: "cpu" });
    }
    get data() {
      return this.#data;
    }
  }
  const onGpu = {
    type: "float32", dims: [1, 4], location: "gpu-buffer",
    get data() {
      throw new Error("The data is not on CPU. Use `getData()` to download GPU data to CPU");
    },
    getData: async () => new Float32Array([5, 6, 7, 8]),
  };

  const out = await session.run({ x: new Tensor("float32", new Float32Array([1, 2, 3, 4]), [1, 4]), ids: new Tensor("int64", new BigInt64Array([7n]), [1]) });
  const gpu = await session.run({ x: onGpu });
  const plain = await session.run({ ids: { type: "int64", dims: [2], data: [1, 2] }, flags: { type: "bool", dims: [2], data: [true, false] } });

  assert.deepEqual([...out.x_out.data], [1, 2, 3, 4]);
  assert.deepEqual([...out.ids_out.data], [7n]);
  assert.deepEqual([...gpu.x_out.data], [5, 6, 7, 8]);
  assert.deepEqual([...plain.ids_out.data], [1n, 2n]);
  assert.equal(tag(plain.flags_out.data), "Uint8Array");
  assert.deepEqual([...plain.flags_out.data], [1, 0]);
  assert.equal(runs(host).length, 3);
});

test("run: fetches select outputs, as in ORT Web", async () => {
  const { model, host } = await stack();
  const session = await model.createSession();
  const feeds = { x: { type: "float32", dims: [1, 4], data: new Float32Array(4) }, ids: { type: "int64", dims: [1], data: new BigInt64Array(1) } };
  assert.deepEqual(Object.keys(await session.run(feeds, ["ids_out"])), ["ids_out"]);
  assert.deepEqual(Object.keys(await session.run(feeds, { x_out: null })), ["x_out"]);
  assert.deepEqual(Object.keys(await session.run(feeds, { logSeverityLevel: 2 })), ["x_out", "ids_out"]); // RunOptions
  assert.deepEqual(runs(host).map((m) => m.params.fetches), [["ids_out"], ["x_out"], undefined]);
  await assert.rejects(session.run(feeds, "x_out"), { name: "TypeError" });
});

test("run: bad feeds are TypeErrors and never reach the host", async () => {
  const { model, host } = await stack();
  const session = await model.createSession();
  const bad = [
    null,
    [1, 2],
    { x: 5 },
    { x: { type: "float32", dims: [1, 4], data: new Float64Array(4) } }, // another array type
    { x: { type: "float32", dims: [1, 3], data: new Float32Array(4) } }, // dims do not fit
    { x: { type: "float32", dims: [1, -4], data: new Float32Array(4) } },
    { x: { type: "int4", dims: [2], data: new Int8Array(1) } },
    { x: { type: "complex64", dims: [1], data: new Float32Array(2) } },
    { s: { type: "string", dims: [2], data: ["a", 1] } },
    { s: { type: "string", dims: [3], data: ["a", "b"] } },
  ];
  for (const feeds of bad) await assert.rejects(session.run(feeds), { name: "TypeError" }, JSON.stringify(feeds));
  await assert.rejects(model.createSession({ executionProviders: "cpu" }), { name: "TypeError" });
  assert.equal(runs(host).length, 0);
});

test("errors: the host's session codes arrive as DOMExceptions", async () => {
  const { model, host } = await stack();
  const session = await model.createSession();
  const feeds = { x: { type: "float32", dims: [1, 4], data: new Float32Array(4) } };
  const expected = {
    inference_failed: "OperationError",
    session_crashed: "OperationError",
    busy: "OperationError",
    too_large: "QuotaExceededError",
  };
  for (const [code, name] of Object.entries(expected)) {
    host.failRun = code;
    await assert.rejects(session.run(feeds), (error) => {
      assert.ok(error instanceof DOMException);
      assert.equal(error.name, name);
      assert.equal(error.webmodelsCode, code);
      assert.match(error.message, new RegExp(`\\(webmodels: ${code}\\)$`));
      return true;
    });
  }
  host.sessions.clear(); // unloaded by the host (idle), or a host restart
  await assert.rejects(session.run(feeds), { name: "InvalidStateError", webmodelsCode: "session_not_found" });
  await session.release(); // nothing left to release: done
});

test("release: frees the host's session once; later runs reject without a request", async () => {
  const { model, host } = await stack();
  const session = await model.createSession();
  await session.release();
  await session.release();
  assert.equal(host.sessions.size, 0);
  assert.equal(host.seen.filter((m) => m.method === "sessions.release").length, 1);
  await assert.rejects(session.run({}), { name: "InvalidStateError", webmodelsCode: "session_not_found" });
  assert.equal(runs(host).length, 0);
});

test("a worker restart during sessions.create creates the session again", async () => {
  const { model, host, browser } = await stack();
  const create = host.methods["sessions.create"];
  host.methods["sessions.create"] = () => {}; // the old host never answers
  const creating = model.createSession();
  await settle();
  host.methods["sessions.create"] = create;
  browser.killWorker();
  await settle();
  const session = await creating;
  assert.deepEqual([...session.inputNames], ["x", "ids"]);
  assert.equal(host.seen.filter((m) => m.method === "sessions.create").length, 2);
});
