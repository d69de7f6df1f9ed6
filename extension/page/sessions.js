// Page side, part 3 of 4: host sessions (docs/design.md#runtime-sessions-and-background-compilation).
// `model.createSession()` (added to the Model by part 4) compiles the model in the host's native ONNX Runtime;
// `session.run(feeds)` takes and returns tensors in the shape of ONNX Runtime Web's
// `Tensor` — {type, dims, data} with TypedArray data — so `ort.Tensor` instances
// work as feeds and a page can switch between in-page ORT Web and the host without
// changing its code.
//
//   const session = await model.createSession({executionProviders: ["cuda", "cpu"]});
//   session.inputNames; session.inputMetadata; session.provider; session.compiledCacheHit
//   const {target_label} = await session.run({bytes: {type: "int32", dims: [1, 2048], data}});
//   await session.release();
//
// On the wire (PROTOCOL.md, sessions.*) a tensor is {type, dims, data}: data is the
// elements' little-endian bytes in base64, or for "string" a JSON array of strings.
(() => {
  "use strict";

  const I = globalThis[Symbol.for("webmodels.page-internals")];
  if (!I) return; // not a secure context

  const tag = (value) => Object.prototype.toString.call(value).slice(8, -1);
  const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

  // ORT Web's element types (onnxruntime-common Tensor.DataTypeMap): the TypedArray
  // of `data` (by tag, so arrays of another realm pass), and the ones also accepted.
  const TYPES = {
    float32: { array: Float32Array, also: [] },
    float64: { array: Float64Array, also: [] },
    // IEEE half floats as their bit patterns (ORT Web's float16 is a Uint16Array);
    // a Float16Array, where the browser has one, holds the same bytes.
    float16: { array: Uint16Array, also: ["Float16Array"] },
    int8: { array: Int8Array, also: [] },
    uint8: { array: Uint8Array, also: ["Uint8ClampedArray"] },
    int16: { array: Int16Array, also: [] },
    uint16: { array: Uint16Array, also: [] },
    int32: { array: Int32Array, also: [] },
    uint32: { array: Uint32Array, also: [] },
    int64: { array: BigInt64Array, also: [] },
    uint64: { array: BigUint64Array, also: [] },
    bool: { array: Uint8Array, also: [] }, // one byte per element, 0 or 1
  };

  // --- tensors ----------------------------------------------------------------------

  /** A copy of `bytes` with each `width`-byte element reversed (big-endian hosts). */
  function swapped(bytes, width) {
    const out = new Uint8Array(bytes.length);
    for (let i = 0; i < bytes.length; i += width) {
      for (let j = 0; j < width; j++) out[i + j] = bytes[i + width - 1 - j];
    }
    return out;
  }

  /** The bytes of `view` in little-endian order (a copy only on big-endian hosts). */
  function littleEndianBytes(view) {
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    return LITTLE_ENDIAN || view.BYTES_PER_ELEMENT === 1 ? bytes : swapped(bytes, view.BYTES_PER_ELEMENT);
  }

  function checkDims(name, dims) {
    if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new TypeError(`feeds.${name}.dims must be an array of non-negative integers`);
    }
    return dims.reduce((a, b) => a * b, 1);
  }

  /** `data` as the TypedArray of `type`: that array itself, or a plain array of
   *  numbers, bigints or booleans converted (as the ort.Tensor constructor does). */
  function typedData(name, type, data) {
    const { array, also } = TYPES[type];
    if (ArrayBuffer.isView(data) && (tag(data) === array.name || also.includes(tag(data)))) {
      return data;
    }
    if (Array.isArray(data)) {
      const wide = array === BigInt64Array || array === BigUint64Array;
      return array.from(data, (v) => (wide ? BigInt(v) : type === "bool" ? Number(Boolean(v)) : v));
    }
    throw new TypeError(`feeds.${name}.data must be a ${array.name} (or an array) for type "${type}"`);
  }

  /** One feed ({type, dims, data}, e.g. an ort.Tensor) in the wire's shape. */
  async function encodeTensor(name, tensor) {
    if (tensor === null || typeof tensor !== "object") {
      throw new TypeError(`feeds.${name} must be a tensor {type, dims, data}`);
    }
    const { type } = tensor;
    // An ort.Tensor held on a GPU (WebGPU/WebNN) throws on `.data`; getData()
    // downloads it (ORT Web API).
    const onDevice = typeof tensor.location === "string" && tensor.location !== "cpu";
    const data = onDevice && typeof tensor.getData === "function" ? await tensor.getData() : tensor.data;
    const dims = Array.from(tensor.dims ?? [], Number);
    const size = checkDims(name, dims);
    if (type === "string") {
      if (!Array.isArray(data) || !data.every((s) => typeof s === "string")) {
        throw new TypeError(`feeds.${name}.data must be an array of strings for type "string"`);
      }
      if (data.length !== size) throw new TypeError(`feeds.${name}: dims [${dims}] need ${size} elements, data has ${data.length}`);
      return { type, dims, data: [...data] };
    }
    if (!Object.hasOwn(TYPES, type)) {
      throw new TypeError(`feeds.${name}.type "${type}" is not supported (${Object.keys(TYPES).join(", ")}, string)`);
    }
    const values = typedData(name, type, data);
    if (values.length !== size) throw new TypeError(`feeds.${name}: dims [${dims}] need ${size} elements, data has ${values.length}`);
    return { type, dims, data: I.toBase64(littleEndianBytes(values)) };
  }

  /** The bytes of an output the host kept (too big for its reply): through the
   *  bridge when it can, else in chunks over native messaging. */
  async function keptBytes(wire) {
    const size = Number(wire.size);
    try {
      return new Uint8Array(await I.fastFetch("sessions.output_open", { ref: wire.ref }, size));
    } catch {
      const bytes = new Uint8Array(size);
      let offset = 0;
      for await (const chunk of I.readParts("sessions.output", { ref: wire.ref }, size)) {
        bytes.set(chunk, offset);
        offset += chunk.length;
      }
      return bytes;
    }
  }

  /** A wire tensor of the host's reply as {type, dims, data: TypedArray | string[]}. */
  async function decodeTensor(name, wire) {
    const type = wire?.type;
    const dims = Array.isArray(wire?.dims) ? wire.dims.map(Number) : [];
    if (type === "string") return { type, dims, data: Array.isArray(wire.data) ? wire.data.map(String) : [] };
    if (!Object.hasOwn(TYPES, type)) {
      throw I.localError("internal", `output ${name} has a type this extension does not know: ${type}`, "UnknownError");
    }
    const { array } = TYPES[type];
    // A fresh buffer at offset 0, so aligned for the typed array.
    const bytes = typeof wire.ref === "string" ? await keptBytes(wire) : I.fromBase64(String(wire.data ?? ""));
    if (bytes.length % array.BYTES_PER_ELEMENT !== 0) {
      throw I.localError("internal", `output ${name}: ${bytes.length} bytes is not a whole number of ${type}`, "UnknownError");
    }
    const ordered = LITTLE_ENDIAN ? bytes : swapped(bytes, array.BYTES_PER_ELEMENT);
    return { type, dims, data: new array(ordered.buffer, 0, bytes.length / array.BYTES_PER_ELEMENT) };
  }

  // --- sessions -------------------------------------------------------------------

  // Sessions the page drops without release() are released when collected, so a
  // careless page does not hold the host's session slots until the idle timeout.
  const collected =
    typeof FinalizationRegistry === "function"
      ? new FinalizationRegistry((sessionId) => {
          I.request("sessions.release", { session_id: sessionId }).promise.catch(() => {});
        })
      : null;

  const metadata = (infos) =>
    Object.freeze((Array.isArray(infos) ? infos : []).map((info) =>
      Object.freeze({ name: info.name, isTensor: true, type: info.type, shape: Object.freeze([...(info.dims ?? [])]) })));

  /** The names in ORT Web's `fetches` (an array, or an object keyed by output names;
   *  an object with other keys is ORT Web's RunOptions, which has no fetches). */
  function fetchNames(fetches, outputNames) {
    if (fetches === undefined || fetches === null) return null;
    if (Array.isArray(fetches)) return fetches.map(String);
    if (typeof fetches !== "object") throw new TypeError("fetches must be an array of output names");
    const keys = Object.keys(fetches);
    return keys.length > 0 && keys.every((k) => outputNames.includes(k)) ? keys : null;
  }

  /** A compiled session of one model in the host (ORT Web InferenceSession-like). */
  class WebModelsSession {
    #id;
    #released = false;
    #reply;

    constructor(reply) {
      this.#id = reply.session_id;
      this.#reply = reply;
      this.inputMetadata = metadata(reply.inputs);
      this.outputMetadata = metadata(reply.outputs);
      this.inputNames = Object.freeze(this.inputMetadata.map((m) => m.name));
      this.outputNames = Object.freeze(this.outputMetadata.map((m) => m.name));
      Object.freeze(this);
      collected?.register(this, this.#id, this);
    }

    /** The execution provider the host runs this session on (e.g. "CPUExecutionProvider"). */
    get provider() {
      return this.#reply.provider;
    }

    /** True when the host loaded an already-optimized graph from its compile cache. */
    get compiledCacheHit() {
      return this.#reply.compiled_cache_hit === true;
    }

    /** run(feeds) or run(feeds, fetches) — as in ORT Web, `fetches` names the
     *  outputs wanted (default: all of them): ["name", …] or {name: null, …}. */
    async run(feeds, fetches = undefined) {
      if (this.#released) throw I.localError("session_not_found", "this session was released", "InvalidStateError");
      if (feeds === null || typeof feeds !== "object" || Array.isArray(feeds)) {
        throw new TypeError("run() takes feeds: {inputName: {type, dims, data}}");
      }
      const params = { session_id: this.#id, feeds: {} };
      for (const [name, tensor] of Object.entries(feeds)) params.feeds[name] = await encodeTensor(name, tensor);
      const names = fetchNames(fetches, this.outputNames);
      if (names !== null) params.fetches = names;
      const { outputs = {} } = await I.request("sessions.run", params).promise;
      const results = {};
      for (const [name, wire] of Object.entries(outputs)) results[name] = await decodeTensor(name, wire);
      return results;
    }

    /** Frees the session in the host; later run() calls reject with InvalidStateError.
     *  A session the host no longer has (idle-unloaded, host restarted) is released. */
    async release() {
      if (this.#released) return;
      this.#released = true;
      collected?.unregister(this);
      try {
        await I.request("sessions.release", { session_id: this.#id }).promise;
      } catch (error) {
        if (error?.webmodelsCode !== "session_not_found") throw error;
      }
    }
  }

  // ORT Web's names are accepted too ("cpu", "cuda", {name: "webgpu"}); the host
  // decides what they mean and which of them really work.
  function sessionParams(info, options) {
    const { executionProviders, graphOptimizationLevel } = options ?? {};
    // A model of several files (webmodels.load({files})) or one stored model.
    const params = info.files ? { files: info.files } : { sha256: info.sha256 };
    if (info.files && info.graph !== undefined) params.graph = info.graph;
    if (executionProviders !== undefined) {
      if (!Array.isArray(executionProviders)) throw new TypeError("executionProviders must be an array");
      params.execution_providers = executionProviders.map((p) => String(typeof p === "object" && p !== null ? p.name : p));
    }
    if (graphOptimizationLevel !== undefined) params.graph_optimization_level = String(graphOptimizationLevel);
    return params;
  }

  async function createSession(info, options = {}) {
    if (options !== null && typeof options !== "object") throw new TypeError("createSession options must be an object");
    const reply = await I.request("sessions.create", sessionParams(info, options)).promise;
    return new WebModelsSession(reply);
  }

  globalThis[Symbol.for("webmodels.page-sessions")] = Object.freeze({ createSession });
})();
