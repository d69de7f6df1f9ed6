// What tests/e2e/test_representations.py calls: one model, loaded for a runtime, run in
// the host and in ONNX Runtime Web (WebGPU, WASM, WebNN where this browser has it).
// Tensors travel to the test as {type, dims, data: base64}.
"use strict";

(() => {
  function describe(error) {
    return { name: error?.name ?? null, code: error?.webmodelsCode ?? null, message: String(error?.message ?? error) };
  }

  function fromBase64(text) {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  }

  function toBase64(bytes) {
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(binary);
  }

  function exported(tensor) {
    const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    return { type: tensor.type, dims: Array.from(tensor.dims), data: toBase64(bytes) };
  }

  async function runFirstOutput(session, input) {
    const outputs = await session.run({ [session.inputNames[0]]: input });
    return outputs[session.outputNames[0]];
  }

  function ortSession(bytes, provider) {
    ort.env.wasm.wasmPaths = new URL("/ort/", location.href).href; // served by the test
    ort.env.wasm.numThreads = 1; // no cross-origin isolation here, so no threads
    return ort.InferenceSession.create(bytes, { executionProviders: [provider] });
  }

  /** What this browser's WebGPU and WebNN report, read the way a page would. */
  async function runtimes() {
    const found = { webgpu: null, webnn: null };
    try {
      const adapter = await navigator.gpu?.requestAdapter();
      found.webgpu = adapter
        ? { features: [...adapter.features].sort(), architecture: adapter.info?.architecture ?? null }
        : { absent: "navigator.gpu.requestAdapter() resolved null" };
    } catch (error) {
      found.webgpu = { absent: describe(error).message };
    }
    try {
      if (!navigator.ml) throw new Error("navigator.ml is undefined");
      const limits = (await navigator.ml.createContext()).opSupportLimits();
      found.webnn = { input: limits.input?.dataTypes ?? [], constant: limits.constant?.dataTypes ?? [] };
    } catch (error) {
      found.webnn = { absent: `${describe(error).name}: ${describe(error).message}` };
    }
    return found;
  }

  /** Loads `query` for `runtime` (the page API adds the device report) or as the
   *  representation it names, runs the float32 input in the host session and in ORT Web
   *  on `providers`. */
  async function loadAndRun(query, runtime, providers, inputBase64, dims) {
    try {
      const ms = {};
      let last = performance.now();
      const lap = (name) => {
        ms[name] = Math.round(performance.now() - last);
        last = performance.now();
      };
      // `runtime`: a runtime's name (`{for: runtime}`), or a whole representation
      const representation = typeof runtime === "string" ? { for: runtime } : runtime;
      const model = await window.webmodels.load(query, { representation });
      lap("load");
      const input = new ort.Tensor("float32", new Float32Array(fromBase64(inputBase64).buffer), dims);
      const session = await model.createSession();
      const outputs = { host: exported(await runFirstOutput(session, input)) };
      await session.release();
      lap("host");
      const bytes = new Uint8Array(await model.arrayBuffer());
      for (const provider of providers) {
        outputs[provider] = exported(await runFirstOutput(await ortSession(bytes, provider), input));
        lap(provider);
      }
      const device = providers.includes("webgpu") ? await ort.env.webgpu.device : null;
      return { info: { ...model.info }, outputs, ms, ortWebgpuDevice: device?.adapterInfo?.architecture ?? null };
    } catch (error) {
      return { error: describe(error) };
    }
  }

  /** Loads `query` as an external-data split (model.onnx + model.onnx_data), runs the
   *  input in a host session over its files and in ORT Web (WASM) given both files. */
  async function loadSplitAndRun(query, inputBase64, dims) {
    try {
      const model = await window.webmodels.load(query, { representation: { external_data: true } });
      const input = new ort.Tensor("float32", new Float32Array(fromBase64(inputBase64).buffer), dims);
      const session = await model.createSession();
      const outputs = { host: exported(await runFirstOutput(session, input)) };
      await session.release();
      const files = model.info.files;
      const read = async (path) => new Uint8Array(await (await window.webmodels.load({ sha256: files[path].sha256 })).arrayBuffer());
      ort.env.wasm.wasmPaths = new URL("/ort/", location.href).href;
      ort.env.wasm.numThreads = 1;
      const web = await ort.InferenceSession.create(await read("model.onnx"), {
        executionProviders: ["wasm"],
        externalData: [{ path: "model.onnx_data", data: await read("model.onnx_data") }],
      });
      outputs.wasm = exported(await runFirstOutput(web, input));
      return { info: { ...model.info }, kind: model.constructor.name, outputs };
    } catch (error) {
      return { error: describe(error) };
    }
  }

  window.representationTest = Object.freeze({ runtimes, loadAndRun, loadSplitAndRun });
})();
