// Page side: the `representation` and `derive` options of webmodels.load, as they go to
// the host (docs/representations.md): the page's fields checked as any page input, and
// the facts of this browser's runtime the host's choice needs, read here.
//
// This file runs as a MAIN-world content script before webmodels-api.js, which takes
// what it leaves under a symbol (and deletes it, so pages never see it).
(() => {
  "use strict";

  /** `value` as a plain object of JSON data (what crosses the extension's ports). */
  function plain(value, what) {
    try {
      const copy = JSON.parse(JSON.stringify(value));
      if (copy !== null && typeof copy === "object" && !Array.isArray(copy)) return copy;
    } catch {
      // fall through
    }
    throw new TypeError(`${what} must be a plain object of JSON data`);
  }

  // `representation: {dtype, format, opset, for}`: with `for: "webgpu"` or `"webnn"` the
  // page API adds what this browser's runtime reports, as `representation.device`, so
  // the host can pick a form that runs here. Only the facts the host's choice uses are
  // sent (a GPU's full feature list is fingerprinting material): whether the WebGPU
  // adapter has `shader-f16`, and the float types WebNN's opSupportLimits() accepts.
  const WEBGPU_FEATURES = ["shader-f16"];
  const WEBNN_DATA_TYPES = ["float32", "float16"];
  const PROBE_MS = 5_000; // an adapter or context that never answers: send nothing

  function withinProbeTime(promise) {
    let timer;
    const late = new Promise((resolve) => (timer = setTimeout(resolve, PROBE_MS, null)));
    return Promise.race([promise, late]).finally(() => clearTimeout(timer));
  }

  async function webgpuReport() {
    try {
      const adapter = await withinProbeTime(navigator.gpu?.requestAdapter() ?? null);
      if (!adapter) return null;
      return { features: WEBGPU_FEATURES.filter((name) => adapter.features.has(name)) };
    } catch {
      return null; // no WebGPU here: the host treats the device as reporting nothing
    }
  }

  async function webnnReport() {
    try {
      const context = await withinProbeTime(navigator.ml?.createContext() ?? null);
      if (!context) return null;
      const limits = context.opSupportLimits();
      const accepted = (name) => ["input", "constant"].every((k) => limits[k]?.dataTypes?.includes(name));
      return { data_types: WEBNN_DATA_TYPES.filter(accepted) };
    } catch {
      return null; // e.g. NotSupportedError: "WebNN is not supported on this platform"
    }
  }

  /** `reports`: the device reports already read for this load, by `for` (each runtime
   *  is asked once however many forms name it). */
  async function representationParam(representation, reports = new Map()) {
    const asked = plain(representation, "representation");
    delete asked.device; // the page API reports the device; a page does not
    const report = new Map([["webgpu", webgpuReport], ["webnn", webnnReport]]).get(asked.for);
    if (report && !reports.has(asked.for)) reports.set(asked.for, report());
    const device = report ? await reports.get(asked.for) : null; // another `for` is the host's to refuse
    if (device) asked.device = { [asked.for]: device };
    return asked;
  }

  // `derive: [representation, …]`: forms the page will ask for later, which the host
  // makes in the background once it holds the model (PROTOCOL.md, `derive`). Checked
  // here as any page input: an array of at most MAX_DERIVE plain objects, each sent as
  // `representation` is (with the device report its `for` needs).
  const MAX_DERIVE = 4;

  async function deriveParam(derive) {
    const tooMany = () => new TypeError(`derive must be an array of at most ${MAX_DERIVE} representation objects`);
    if (!Array.isArray(derive) || derive.length > MAX_DERIVE) throw tooMany();
    let items;
    try {
      items = JSON.parse(JSON.stringify(derive)); // one read of a page's getters/proxies
    } catch {
      throw tooMany();
    }
    if (!Array.isArray(items) || items.length > MAX_DERIVE) throw tooMany();
    const forms = [];
    const reports = new Map();
    for (const item of items) forms.push(await representationParam(item, reports)); // a TypeError for a non-object
    return forms;
  }

  globalThis[Symbol.for("webmodels.page-forms")] = Object.freeze({
    plain,
    representationParam,
    deriveParam,
  });
})();
