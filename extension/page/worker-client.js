// The page API inside a Web Worker (docs/design.md#page-api). Content scripts do not reach workers,
// so a worker opts in: its page connects it, and it imports this script.
//
//   page:    const worker = new Worker("app-worker.js", { name: webmodels.workerScript });
//            webmodels.connectWorker(worker);          // posts it a MessagePort
//   worker:  importScripts(self.name);                 // webmodels.workerScript: a blob: URL
//            const model = await webmodels.load(query); await model.arrayBuffer();
//            navigator.crossOriginStorage.getFileHandle(hash)   (WebLLM, Transformers.js)
//
// Every call goes over the port to the page, which makes it with its own API: the
// worker is the page's, so it has exactly the page's partition and nothing more.
//
// This file runs as a MAIN-world content script (before webmodels-api.js) and is not
// web-accessible: its URL would name the extension (in Firefox a per-profile UUID).
// In a page it only leaves its own source text, from which webmodels.workerScript
// makes a blob: URL of the page's origin; the client runs where that is imported.
(() => {
  "use strict";

  function workerClient() {
    "use strict";

    if (self.webmodels && self.webmodels.__worker) return;
    const TAG = "__webmodels";
    const HEX = /^[0-9a-f]{64}$/;
    const pending = new Map(); // id -> {resolve, reject, onEvent}
    const queued = [];
    let port = null;
    let nextId = 1;

    function toError(error) {
      const exception = new DOMException(String(error?.message ?? "the call failed"), String(error?.name ?? "UnknownError"));
      Object.defineProperty(exception, "webmodelsCode", { value: error?.code ?? null, enumerable: true });
      return exception;
    }

    function send(message, transfer = []) {
      if (port) port.postMessage(message, transfer);
      else queued.push([message, transfer]);
    }

    function call(op, args = {}, { onEvent = null, transfer = [] } = {}) {
      return new Promise((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject, onEvent });
        send({ [TAG]: 1, id, op, args }, transfer);
      });
    }

    function receive(message) {
      const waiting = pending.get(message?.id);
      if (!waiting) return;
      if (message.event === true) {
        waiting.onEvent?.(message);
        return;
      }
      pending.delete(message.id);
      if ("error" in message) waiting.reject(toError(message.error));
      else waiting.resolve(message.value);
    }

    // The page's connectWorker() posts the port as the worker's first message; this
    // listener comes before the worker's own, and keeps that message from it.
    self.addEventListener("message", (event) => {
      if (event.data?.[TAG] !== "port" || !(event.data.port instanceof MessagePort)) return;
      event.stopImmediatePropagation();
      port = event.data.port;
      port.onmessage = (e) => receive(e.data);
      for (const [message, transfer] of queued.splice(0)) port.postMessage(message, transfer);
    });

    class WorkerModel {
      #info;
      constructor(info) {
        this.#info = Object.freeze(info);
      }
      get info() {
        return this.#info;
      }
      arrayBuffer() {
        return call("read", { sha256: this.#info.sha256 });
      }
      /** The model's bytes as Uint8Array chunks, as in windows: the page's own
       *  model.stream() (through the bridge at loopback speed), transferred here. */
      stream() {
        const { readable, writable } = new TransformStream();
        call("stream", { sha256: this.#info.sha256 }).then(
          (source) => source.pipeTo(writable).catch(() => {}), // cancel/errors reach both ends
          (error) => writable.abort(error).catch(() => {}),
        );
        return readable;
      }
      async blob() {
        return new Blob([await this.arrayBuffer()]);
      }
    }

    async function load(query, options = {}) {
      const { monitor, substitute, prefetch, representation, derive } = options ?? {};
      const progress = new EventTarget();
      if (typeof monitor === "function") monitor(progress);
      const onEvent = (e) => {
        const init = { lengthComputable: typeof e.total === "number", loaded: e.loaded, total: e.total ?? 0 };
        progress.dispatchEvent(new ProgressEvent("downloadprogress", init));
      };
      const asked = { substitute, prefetch, representation, derive }; // the page reports the device
      return new WorkerModel(await call("load", { query, options: asked }, { onEvent }));
    }

    // The same errors as in windows (cos.js parseHash): TypeError for a malformed hash,
    // NotSupportedError for another algorithm.
    function hexOf(hash) {
      if (hash === null || typeof hash !== "object") {
        throw new TypeError('a hash is {algorithm: "SHA-256", value: "<64 hex digits>"}');
      }
      // Both members are required (WebIDL: a missing required member is a TypeError).
      if (hash.algorithm === undefined || hash.value === undefined) {
        throw new TypeError('a hash needs both "algorithm" and "value"');
      }
      const algorithm = String(hash.algorithm ?? "");
      if (algorithm.toUpperCase() !== "SHA-256") {
        throw new DOMException(`hash algorithm "${algorithm}" is not supported; use SHA-256`, "NotSupportedError");
      }
      const value = String(hash.value ?? "").toLowerCase();
      if (!HEX.test(value)) throw new TypeError("hash.value must be 64 hexadecimal digits");
      return value;
    }

    function handle(sha256, create) {
      return Object.freeze({
        kind: "file",
        name: sha256,
        async getFile() {
          return new File([await call("cos.read", { sha256 })], sha256);
        },
        async createWritable() {
          if (!create) throw new DOMException("this handle was requested without {create: true}", "NotAllowedError");
          const parts = [];
          return {
            async write(data) {
              parts.push(data instanceof Blob ? data : new Blob([data]));
            },
            async close() {
              await call("cos.write", { sha256, blob: new Blob(parts) });
            },
            async abort() {
              parts.length = 0;
            },
          };
        },
      });
    }

    // Same names and behaviour as in windows (cos.js): getFileHandle, and the older
    // requestFileHandle / requestFileHandles as aliases.
    async function getFileHandle(hash, options = {}) {
      const sha256 = hexOf(hash);
      const create = options?.create === true;
      if (!create) await call("cos.lookup", { sha256 }); // NotFoundError when absent
      return handle(sha256, create);
    }

    const crossOriginStorage = Object.freeze({
      getFileHandle,
      requestFileHandle: async (hash, options = {}) => getFileHandle(hash, options),
      async requestFileHandles(hashes, options = {}) {
        if (hashes === null || typeof hashes?.[Symbol.iterator] !== "function") {
          throw new TypeError("requestFileHandles takes a list of hashes");
        }
        return Promise.all(Array.from(hashes, (h) => getFileHandle(h, options)));
      },
    });

    self.webmodels = Object.freeze({
      __worker: true,
      availability: (query) => call("availability", { query }),
      load,
      list: () => call("list"),
    });
    if (!("crossOriginStorage" in navigator)) {
      Object.defineProperty(navigator, "crossOriginStorage", { value: crossOriginStorage, configurable: true });
    }
  }

  if (typeof WorkerGlobalScope === "function" && self instanceof WorkerGlobalScope) workerClient();
  else globalThis[Symbol.for("webmodels.worker-client")] = `(${workerClient})();\n`;
})();
