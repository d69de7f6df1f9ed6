// Page side, part 4 of 4: window.webmodels (DESIGN §7), and the end of the
// internals that parts 1 to 3 shared.
//
//   await webmodels.availability(query)   "available" | "downloading" | "downloadable" | "unavailable"
//   const model = await webmodels.load(query, {monitor, signal, prefetch, substitute})
//   model.info; await model.arrayBuffer(); model.stream(); await model.blob()
//   const session = await model.createSession(options)   (sessions.js)
//   await webmodels.list()                ModelInfo of every model this site can see
//
// `monitor(m)` is called at once with an EventTarget on which "downloadprogress"
// events (ProgressEvent: `loaded`, `total` in bytes) fire while the host downloads,
// like the `monitor` option of Chrome's built-in AI APIs.
(() => {
  "use strict";

  const KEY = Symbol.for("webmodels.page-internals");
  const SESSIONS = Symbol.for("webmodels.page-sessions");
  const I = globalThis[KEY];
  const S = globalThis[SESSIONS];
  delete globalThis[KEY];
  delete globalThis[SESSIONS];
  if (!I) return; // not a secure context

  /** `value` as plain JSON data (what crosses the extension's ports). */
  function plain(value, what) {
    try {
      const copy = JSON.parse(JSON.stringify(value));
      if (copy !== null && typeof copy === "object" && !Array.isArray(copy)) return copy;
    } catch {
      // fall through
    }
    throw new TypeError(`${what} must be a plain object of JSON data`);
  }

  function aborted(signal) {
    return signal.reason ?? new DOMException("the operation was aborted", "AbortError");
  }

  function progressEvent(loaded, total) {
    const init = { lengthComputable: typeof total === "number", loaded, total: total ?? 0 };
    if (typeof ProgressEvent === "function") return new ProgressEvent("downloadprogress", init);
    return Object.assign(new Event("downloadprogress"), init);
  }

  /** A model in the store, as this site may see it. */
  class WebModel {
    #info;

    constructor(info) {
      this.#info = Object.freeze(info);
    }

    /** ModelInfo (PROTOCOL.md): sha256, size, format, name, version, source, inputs… */
    get info() {
      return this.#info;
    }

    /** The model's bytes, in order, as Uint8Array chunks. */
    stream() {
      let chunks = null;
      return new ReadableStream({
        pull: async (controller) => {
          chunks ??= I.readChunks(this.#info.sha256, this.#info.size);
          const { value, done } = await chunks.next();
          if (done) controller.close();
          else controller.enqueue(value);
        },
        cancel: async () => {
          await chunks?.return();
        },
      });
    }

    async arrayBuffer() {
      try {
        return await I.fastRead(this.#info.sha256, this.#info.size); // loopback, ~10x
      } catch {
        // Through native messaging, in chunks (the bridge is not there, or failed).
      }
      const bytes = new Uint8Array(this.#info.size);
      let offset = 0;
      for await (const chunk of I.readChunks(this.#info.sha256, this.#info.size)) {
        bytes.set(chunk, offset);
        offset += chunk.length;
      }
      return bytes.buffer;
    }

    async blob() {
      try {
        return new Blob([await I.fastRead(this.#info.sha256, this.#info.size)]);
      } catch {
        // as in arrayBuffer()
      }
      const parts = [];
      for await (const chunk of I.readChunks(this.#info.sha256, this.#info.size)) parts.push(chunk);
      return new Blob(parts);
    }

    /** A session of this model in the host's native ONNX Runtime (sessions.js). */
    async createSession(options = {}) {
      return S.createSession(this.#info, options);
    }
  }

  async function availability(query) {
    const result = await I.request("models.availability", { query: plain(query, "query") }).promise;
    return result.availability;
  }

  async function load(query, options = {}) {
    const { monitor, signal, prefetch, substitute } = options ?? {};
    const params = { query: plain(query, "query") };
    if (prefetch !== undefined) params.prefetch = prefetch === true;
    if (substitute !== undefined) params.substitute = String(substitute);
    if (signal?.aborted) throw aborted(signal);
    const progress = new EventTarget();
    if (typeof monitor === "function") monitor(progress);
    const call = I.request("models.load", params, {
      onEvent: (event) => {
        if (event.event === "download.progress") progress.dispatchEvent(progressEvent(event.loaded, event.total));
      },
    });
    // Aborting cancels the request on the host (the download stops unless another
    // request or a prefetch still wants it) and rejects at once.
    const onAbort = () => call.abort(aborted(signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return new WebModel((await call.promise).model);
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  async function list() {
    return (await I.request("models.list", {}).promise).models;
  }

  const api = Object.freeze({ availability, load, list });
  Object.defineProperty(window, "webmodels", { value: api, configurable: true, writable: true, enumerable: false });
})();
