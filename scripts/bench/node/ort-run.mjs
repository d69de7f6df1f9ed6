// Times one model in Node with ONNX Runtime Web (WASM, single-threaded) or ONNX
// Runtime for Node (native), for scripts/bench/sessions.py.
//
//   node ort-run.mjs --runtime web|node --model m.onnx --feeds feeds.json --rounds 20 [--warmup 3]
//
// feeds.json holds the inputs in the wire shape of sessions.run: {name: {type, dims,
// data: base64 little-endian}}. Prints one JSON line: {create_ms, run_ms: [...],
// outputs: {name: {type, dims, data: base64}}} (outputs of the last run).
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const ARRAYS = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, int8: Int8Array,
  uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array,
  uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array,
};

const { values: args } = parseArgs({
  options: {
    runtime: { type: "string", default: "web" },
    model: { type: "string" },
    feeds: { type: "string" },
    rounds: { type: "string", default: "20" },
    warmup: { type: "string", default: "3" },
  },
});

const ort = args.runtime === "node" ? await import("onnxruntime-node") : await import("onnxruntime-web");
if (args.runtime !== "node") ort.env.wasm.numThreads = 1;

function tensorOf({ type, dims, data }) {
  if (type === "string") return new ort.Tensor(type, data, dims);
  const bytes = Buffer.from(data, "base64");
  const copy = new Uint8Array(bytes); // aligned, own buffer
  return new ort.Tensor(type, new ARRAYS[type](copy.buffer, 0, copy.length / ARRAYS[type].BYTES_PER_ELEMENT), dims);
}

function wireOf(tensor) {
  if (tensor.type === "string") return { type: tensor.type, dims: [...tensor.dims], data: tensor.data };
  const data = tensor.data;
  return { type: tensor.type, dims: [...tensor.dims], data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64") };
}

const model = new Uint8Array(readFileSync(args.model));
const feeds = Object.fromEntries(Object.entries(JSON.parse(readFileSync(args.feeds, "utf8"))).map(([k, v]) => [k, tensorOf(v)]));
const options = { executionProviders: [args.runtime === "node" ? "cpu" : "wasm"] };

let started = performance.now();
const session = await ort.InferenceSession.create(model, options);
const createMs = performance.now() - started;

let outputs = null;
for (let i = 0; i < Number(args.warmup); i++) outputs = await session.run(feeds);
const runMs = [];
for (let i = 0; i < Number(args.rounds); i++) {
  started = performance.now();
  outputs = await session.run(feeds);
  runMs.push(performance.now() - started);
}
const exported = Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, wireOf(v)]));
process.stdout.write(JSON.stringify({ create_ms: createMs, run_ms: runMs, outputs: exported }) + "\n");
await session.release();
