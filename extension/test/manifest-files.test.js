// webmodels.load({files}) (page/webmodels-api.js): a model made of several files the page
// stored through COS, named by hash; createSession() sends exactly those names and hashes
// to the host's sessions.create (docs/manifests.md), which checks them.
import assert from "node:assert/strict";
import { test } from "node:test";

import { startServiceWorker } from "../background/router.js";
import { FakeBrowser, openFrame } from "./fake-browser.js";
import { FakeHost } from "./fake-host.js";

const GRAPH = "a".repeat(64);
const DATA = "b".repeat(64);

async function stack() {
  const host = new FakeHost({ network: {} });
  host.methods["sessions.create"] = (id) =>
    host.port.postMessage({
      id,
      ok: true,
      result: { session_id: "s1", provider: "CPUExecutionProvider", inputs: [], outputs: [], compiled_cache_hit: false },
    });
  const browser = new FakeBrowser(host);
  await browser.startWorker(startServiceWorker).ready;
  return { host, ...openFrame(browser) };
}

test("load({files}).createSession() sends the files and the graph, nothing else", async () => {
  const { host, webmodels } = await stack();
  const files = { "onnx/model.onnx": { sha256: GRAPH, extra: 1 }, "onnx/model.onnx_data": { sha256: DATA } };
  const model = await webmodels.load({ files, graph: "onnx/model.onnx" });
  assert.deepEqual(JSON.parse(JSON.stringify(model.files)), { "onnx/model.onnx": { sha256: GRAPH }, "onnx/model.onnx_data": { sha256: DATA } });
  await model.createSession({ executionProviders: ["cpu"] });
  const create = host.seen.find((m) => m.method === "sessions.create");
  assert.deepEqual(create.params, {
    files: { "onnx/model.onnx": { sha256: GRAPH }, "onnx/model.onnx_data": { sha256: DATA } },
    graph: "onnx/model.onnx",
    execution_providers: ["cpu"],
  });
});

test("load({files}) refuses a file without a sha256 before asking the host", async () => {
  const { host, webmodels } = await stack();
  await assert.rejects(webmodels.load({ files: { "model.onnx": {} } }), { name: "TypeError" });
  await assert.rejects(webmodels.load({ files: [] }), { name: "TypeError" });
  assert.equal(host.seen.filter((m) => m.method === "sessions.create").length, 0);
});

test("load({files}) with URLs: one models.load for the model, its progress naming each file", async () => {
  const { host, webmodels } = await stack();
  host.methods["models.load"] = (id) => {
    const send = (message) => host.port.postMessage({ id, ...message });
    send({ event: "download.progress", loaded: 10, total: 30, file: { path: "model.onnx", loaded: 10, total: 10 } });
    send({ event: "download.progress", loaded: 30, total: 30, file: { path: "model.onnx_data", loaded: 20, total: 20 } });
    send({ ok: true, result: { model: { files: {}, size: 30 } } });
  };
  const files = {
    "model.onnx": { sha256: GRAPH, url: "https://models.example/model.onnx", size: 10 },
    "model.onnx_data": { sha256: DATA, url: "https://models.example/model.onnx_data", size: 20 },
  };
  const seen = [];
  const model = await webmodels.load({ files }, {
    monitor: (m) => m.addEventListener("downloadprogress", (e) => seen.push([e.loaded, e.total, e.file.path])),
  });
  assert.deepEqual(seen, [[10, 30, "model.onnx"], [30, 30, "model.onnx_data"]]);
  const [sent] = host.seen.filter((m) => m.method === "models.load");
  assert.deepEqual(sent.params.query.files["model.onnx_data"], {
    sha256: DATA, url: "https://models.example/model.onnx_data", size: 20,
  });
  // The model is the files by hash, as for files the page stored itself.
  assert.deepEqual(JSON.parse(JSON.stringify(model.files)), { "model.onnx": { sha256: GRAPH }, "model.onnx_data": { sha256: DATA } });
});
