// What tests/e2e/test_sessions.py calls in the sessions page: one model run by the
// host (model.createSession) and by ONNX Runtime Web in the page (WASM), through the
// same few lines of code. Tensors travel to the test as {type, dims, data: base64}.
"use strict";

(() => {
  function describe(error) {
    return { error: { name: error?.name, code: error?.webmodelsCode ?? null, message: String(error?.message ?? error) } };
  }

  function fromBase64(text) {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  }

  function toBase64(bytes) {
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(binary);
  }

  /** A tensor of either runtime as JSON for the test. */
  function exported(tensor) {
    const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    return { type: tensor.type, dims: Array.from(tensor.dims), data: toBase64(bytes) };
  }

  /** The code a page writes once: it does not care which runtime `session` is. */
  async function runFirstOutput(session, input) {
    const outputs = await session.run({ [session.inputNames[0]]: input });
    return outputs[session.outputNames[0]];
  }

  async function wasmSession(bytes) {
    ort.env.wasm.wasmPaths = new URL("/ort/", location.href).href; // served by the test
    ort.env.wasm.numThreads = 1; // no cross-origin isolation here, so no threads
    return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  }

  /** Loads the model, runs an int32 input (base64, `dims`) in the host and in ORT
   *  Web; returns both outputs, the host session's description, and a second
   *  session's compile-cache flag. The ort.Tensor is the host session's feed too. */
  async function hostAndWasm(query, inputBase64, dims) {
    try {
      const model = await window.webmodels.load(query);
      const input = new ort.Tensor("int32", new Int32Array(fromBase64(inputBase64).buffer), dims);

      const session = await model.createSession();
      const host = await runFirstOutput(session, input);
      const second = await model.createSession();
      await second.release();

      const wasm = await runFirstOutput(await wasmSession(new Uint8Array(await model.arrayBuffer())), input);

      await session.release();
      const afterRelease = await session.run({}).then(() => null, describe);
      return {
        host: exported(host),
        wasm: exported(wasm),
        hostOutputIsTypedArray: host.data instanceof Float32Array,
        session: {
          inputNames: [...session.inputNames],
          outputNames: [...session.outputNames],
          inputMetadata: session.inputMetadata,
          provider: session.provider,
          compiledCacheHit: session.compiledCacheHit,
        },
        secondCompiledCacheHit: second.compiledCacheHit,
        afterRelease,
      };
    } catch (error) {
      return describe(error);
    }
  }

  /** A run that the host must refuse: the input tensor of a wrong shape. */
  async function wrongShape(query) {
    try {
      const session = await (await window.webmodels.load(query)).createSession();
      try {
        await session.run({ bytes: { type: "int32", dims: [1, 7], data: new Int32Array(7) } });
        return { error: null };
      } finally {
        await session.release();
      }
    } catch (error) {
      return describe(error);
    }
  }

  window.sessionTest = { hostAndWasm, wrongShape };
})();
