// webmodels.load(query, {representation}): the page API adds what this browser's
// runtime reports (only the facts the host's choice uses) and nothing a page forged.
import assert from "node:assert/strict";
import { resolveObjectURL } from "node:buffer";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import vm from "node:vm";

import { startServiceWorker } from "../background/router.js";
import { FakeBrowser, openFrame } from "./fake-browser.js";
import { FakeHost, integrityOf } from "./fake-host.js";

const MODEL = randomBytes(4096);
const MODEL_URL = "https://models.example/m.onnx";
const QUERY = { url: MODEL_URL, integrity: integrityOf(MODEL) };

async function stack() {
  const host = new FakeHost({ network: { [MODEL_URL]: MODEL } });
  const browser = new FakeBrowser(host);
  await browser.startWorker(startServiceWorker).ready;
  return { host, ...openFrame(browser) };
}

function asked(host) {
  return host.seen.filter((m) => m.method === "models.load").map((m) => m.params.representation);
}

const adapter = (...features) => ({ requestAdapter: async () => ({ features: new Set(features) }) });

test("for webgpu: the adapter's shader-f16, and no other feature, goes to the host", async () => {
  const { host, navigator, webmodels } = await stack();
  navigator.gpu = adapter("shader-f16", "subgroups", "timestamp-query");
  await webmodels.load(QUERY, { representation: { for: "webgpu", device: { webgpu: { features: ["forged"] } } } });
  navigator.gpu = adapter("subgroups"); // SwiftShader: no shader-f16
  await webmodels.load(QUERY, { representation: { for: "webgpu", opset: 17 } });
  navigator.gpu = { requestAdapter: async () => null }; // WebGPU without an adapter
  await webmodels.load(QUERY, { representation: { for: "webgpu" } });
  assert.deepEqual(asked(host), [
    { for: "webgpu", device: { webgpu: { features: ["shader-f16"] } } },
    { for: "webgpu", opset: 17, device: { webgpu: { features: [] } } },
    { for: "webgpu" },
  ]);
});

test("for webnn: the float types opSupportLimits() accepts; nothing where WebNN fails", async () => {
  const { host, navigator, webmodels } = await stack();
  const limits = { input: { dataTypes: ["float32", "float16", "int8"] }, constant: { dataTypes: ["float32", "float16"] } };
  navigator.ml = { createContext: async () => ({ opSupportLimits: () => limits }) };
  await webmodels.load(QUERY, { representation: { for: "webnn" } });
  navigator.ml = {
    createContext: async () => {
      throw new DOMException("WebNN is not supported on this platform.", "NotSupportedError");
    },
  };
  await webmodels.load(QUERY, { representation: { for: "webnn", dtype: "fp32" } });
  await webmodels.load(QUERY, { representation: { for: "wasm", dtype: "int8" } });
  assert.deepEqual(asked(host), [
    { for: "webnn", device: { webnn: { data_types: ["float32", "float16"] } } },
    { for: "webnn", dtype: "fp32" },
    { for: "wasm", dtype: "int8" },
  ]);
});

test("a representation that is not a plain object is a TypeError; an unknown `for` gets no report", async () => {
  const { host, webmodels } = await stack();
  await assert.rejects(webmodels.load(QUERY, { representation: "webgpu" }), { name: "TypeError" });
  assert.deepEqual(asked(host), []);
  await webmodels.load(QUERY, { representation: { for: "constructor" } }); // the fake host takes it
  assert.deepEqual(asked(host), [{ for: "constructor" }]); // no report made up for it
});

test("a connected worker's load sends the representation; its page reports the device", async () => {
  const { host, navigator, webmodels, main } = await stack();
  navigator.gpu = adapter("shader-f16", "subgroups");
  main.MessageChannel = MessageChannel; // a window has it; the fake frame does not
  const source = await resolveObjectURL(webmodels.workerScript).text();
  const self = new EventTarget();
  const ProgressEvent = class extends Event {
    constructor(type, init) {
      super(type);
      Object.assign(this, init);
    }
  };
  const globals = { self, navigator: {}, MessagePort, DOMException, EventTarget, ProgressEvent, Blob };
  const worker = vm.createContext(globals);
  vm.runInContext(source, worker);
  let port = null;
  webmodels.connectWorker({
    postMessage(data) {
      port = data.port;
      self.dispatchEvent(new MessageEvent("message", { data }));
    },
  });
  try {
    const model = await self.webmodels.load(QUERY, { representation: { for: "webgpu", dtype: "fp32" } });
    assert.equal(model.info.size, MODEL.length);
  } finally {
    port?.close();
  }
  assert.deepEqual(asked(host), [{ for: "webgpu", dtype: "fp32", device: { webgpu: { features: ["shader-f16"] } } }]);
});

// `derive: [representation, …]` (PROTOCOL.md): forms asked ahead, checked as page input.
function derived(host) {
  return host.seen.filter((m) => m.method === "models.load").map((m) => m.params.derive);
}

test("derive: each form goes to the host as a representation, with its device report", async () => {
  const { host, navigator, webmodels } = await stack();
  let asks = 0;
  navigator.gpu = { requestAdapter: async () => (asks++, { features: new Set(["shader-f16", "subgroups"]) }) };
  const forged = { webgpu: { features: ["forged"] } };
  await webmodels.load(QUERY, { derive: [{ dtype: "int8" }, { for: "webgpu", device: forged }, { for: "webgpu", dtype: "fp32" }] });
  assert.equal(asks, 1); // the adapter is asked once per load, however many forms name it
  await webmodels.load(QUERY, { derive: [] });
  await webmodels.load(QUERY);
  assert.deepEqual(derived(host), [
    [
      { dtype: "int8" },
      { for: "webgpu", device: { webgpu: { features: ["shader-f16"] } } },
      { for: "webgpu", dtype: "fp32", device: { webgpu: { features: ["shader-f16"] } } },
    ],
    [],
    undefined,
  ]);
});

test("derive that is not an array of at most 4 plain objects is a TypeError, and nothing is sent", async () => {
  const { host, webmodels } = await stack();
  const cyclic = [{}];
  cyclic[0].self = cyclic;
  const lying = new Proxy([{}], { get: (t, k) => (k === "length" ? 1 : k === "toJSON" ? () => Array(5).fill({}) : t[k]) });
  const hostile = [
    true,
    "fp16",
    { dtype: "fp16" },
    [{}, {}, {}, {}, {}],
    ["fp16"],
    [null],
    [[{ dtype: "fp16" }]],
    cyclic,
    lying,
    [{ get dtype() { throw new Error("page getter"); } }],
  ];
  for (const derive of hostile) {
    await assert.rejects(webmodels.load(QUERY, { derive }), { name: "TypeError" }, String(derive));
  }
  assert.deepEqual(asked(host), []);
});

test("a connected worker's load sends derive too", async () => {
  const { host, webmodels, main } = await stack();
  main.MessageChannel = MessageChannel;
  const source = await resolveObjectURL(webmodels.workerScript).text();
  const self = new EventTarget();
  const globals = { self, navigator: {}, MessagePort, DOMException, EventTarget, ProgressEvent: Event, Blob };
  vm.runInContext(source, vm.createContext(globals));
  let port = null;
  webmodels.connectWorker({
    postMessage(data) {
      port = data.port;
      self.dispatchEvent(new MessageEvent("message", { data }));
    },
  });
  try {
    await self.webmodels.load(QUERY, { derive: [{ dtype: "fp16" }] });
    await assert.rejects(self.webmodels.load(QUERY, { derive: "fp16" }));
  } finally {
    port?.close();
  }
  assert.deepEqual(derived(host), [[{ dtype: "fp16" }]]);
});
