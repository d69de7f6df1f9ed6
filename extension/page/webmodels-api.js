// Page side, part 4 of 4: window.webmodels (docs/design.md#page-api), and the end of the
// internals that parts 1 to 3 shared.
//
//   await webmodels.availability(query)   "available" | "downloading" | "downloadable" | "unavailable"
//   const model = await webmodels.load(query, {monitor, signal, prefetch, compile, substitute, representation, derive})
//     (prefetch: true, or {compile: true}: a background download that also asks for a
//     compiled session)
//   model.info; await model.arrayBuffer(); model.stream(); await model.blob()
//   const session = await model.createSession(options)   (sessions.js)
//   const set = await webmodels.load({files: {"model.onnx": {sha256}, …}, graph}); set.createSession()
//   await webmodels.list()                ModelInfo of every model this site can see
//
// `monitor(m)` is called at once with an EventTarget on which "downloadprogress"
// events (ProgressEvent: `loaded`, `total` in bytes) fire while the host downloads,
// like the `monitor` option of Chrome's built-in AI APIs.
(() => {
  "use strict";

  const KEY = Symbol.for("webmodels.page-internals");
  const SESSIONS = Symbol.for("webmodels.page-sessions");
  const WORKER_CLIENT = Symbol.for("webmodels.worker-client");
  const FORMS = Symbol.for("webmodels.page-forms");
  const I = globalThis[KEY];
  const S = globalThis[SESSIONS];
  const workerSource = globalThis[WORKER_CLIENT]; // page/worker-client.js
  const { plain, representationParam, deriveParam } = globalThis[FORMS]; // page/forms.js
  delete globalThis[KEY];
  delete globalThis[SESSIONS];
  delete globalThis[WORKER_CLIENT];
  delete globalThis[FORMS];
  if (!I) return; // not a secure context

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

    /** The model's bytes, in order, as Uint8Array chunks, each as it arrives (through
     *  the bridge at loopback speed; native messaging when the bridge is not there). */
    stream() {
      return I.streamModel(this.#info.sha256, this.#info.size);
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

    /** The model as a Blob assembled from the stream part by part (never one buffer
     *  of the whole size), so a multi-GB model fits where an ArrayBuffer cannot. */
    async blob() {
      return new Blob(await I.blobParts(this.#info.sha256, this.#info.size));
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

  /** `compile: true`, or `prefetch: {compile: true}` (a prefetch that also asks for a
   *  compiled session): the host queues one idle-priority compile of the model (ONNX
   *  only) in this site's own cache scope. Booleans only. */
  function compileOptions({ compile, prefetch }) {
    const params = {};
    if (compile !== undefined) {
      if (typeof compile !== "boolean") throw new TypeError("compile must be true or false");
      params.compile = compile;
    }
    if (prefetch !== null && typeof prefetch === "object") {
      if (typeof prefetch.compile !== "boolean") throw new TypeError("prefetch.compile must be true or false");
      params.prefetch = true;
      params.compile = params.compile === true || prefetch.compile;
    }
    return params;
  }

  /** A model made of several files the page stored (COS) and names by hash, e.g.
   *  {"model.onnx": {sha256}, "model.onnx_data": {sha256}}, or a stored model of several
   *  files loaded by name (docs/manifests.md). The host checks them when a session is
   *  created: each must be visible to this site, and the graph's external data must
   *  name exactly these files. */
  class WebModelFiles {
    #files;
    #graph;
    #info;

    constructor(files, graph, info = null) {
      this.#files = files;
      this.#graph = graph;
      this.#info = info === null ? null : Object.freeze(info);
    }

    get files() {
      return plain(this.#files, "files");
    }

    /** For a model loaded by name: its name, version, files (path → {sha256, size,
     *  role}), graph and size; null for files the page named itself. */
    get info() {
      return this.#info;
    }

    async createSession(options = {}) {
      return S.createSession({ files: this.#files, graph: this.#graph }, options);
    }
  }

  async function loadFiles(query, options) {
    const files = plain(query.files, "files");
    const wanted = {}; // with their URLs: the host downloads those this site does not hold
    for (const [name, ref] of Object.entries(files)) {
      if (typeof ref?.sha256 !== "string") throw new TypeError(`files[${JSON.stringify(name)}] must be {sha256}`);
      files[name] = { sha256: ref.sha256 };
      wanted[name] = { sha256: ref.sha256 };
      if (ref.url !== undefined) wanted[name].url = String(ref.url);
      if (ref.urls !== undefined) wanted[name].urls = Array.from(ref.urls, String);
      if (ref.size !== undefined) wanted[name].size = Number(ref.size);
    }
    const graph = query.graph === undefined ? undefined : String(query.graph);
    const { compile } = compileOptions(options ?? {});
    if (Object.values(wanted).some((ref) => ref.url !== undefined || ref.urls !== undefined)) {
      // One load for the model: one progress stream (summed over its files, `file`
      // naming the one that moved), one abort for all its transfers.
      const q = graph === undefined ? { files: wanted } : { files: wanted, graph };
      await requestLoad({ query: q, ...compileOptions(options ?? {}) }, options);
      return new WebModelFiles(files, graph);
    }
    if (compile === true) {
      // The host checks the files now and queues an idle-priority compile of the set.
      const q = graph === undefined ? { files } : { files, graph };
      await I.request("models.load", { query: q, compile: true }).promise;
    }
    return new WebModelFiles(files, graph);
  }

  async function load(query, options = {}) {
    if (query?.files !== undefined) return loadFiles(query, options);
    const { monitor, signal, prefetch, substitute, representation, derive } = options ?? {};
    const params = { query: plain(query, "query"), ...compileOptions(options ?? {}) };
    if (prefetch !== undefined && typeof prefetch !== "object") params.prefetch = prefetch === true;
    if (substitute !== undefined) params.substitute = String(substitute);
    if (representation !== undefined) params.representation = await representationParam(representation);
    if (derive !== undefined) params.derive = await deriveParam(derive);
    const model = await requestLoad(params, { monitor, signal });
    // A name may resolve to a model of several files (docs/manifests.md).
    if (model.files) return new WebModelFiles(plain(model.files, "files"), model.graph, model);
    return new WebModel(model);
  }

  /** `models.load` with its progress to `monitor` and `signal` to abort it; the model. */
  async function requestLoad(params, { monitor, signal } = {}) {
    if (signal?.aborted) throw aborted(signal);
    const progress = new EventTarget();
    if (typeof monitor === "function") monitor(progress);
    const call = I.request("models.load", params, {
      onEvent: (event) => {
        if (event.event !== "download.progress") return;
        const shown = progressEvent(event.loaded, event.total);
        // A model of several files: which file moved ({path, loaded, total}).
        if (event.file) Object.defineProperty(shown, "file", { value: Object.freeze({ ...event.file }) });
        progress.dispatchEvent(shown);
      },
    });
    // Aborting cancels the request on the host (the download stops unless another
    // request or a prefetch still wants it) and rejects at once.
    const onAbort = () => call.abort(aborted(signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return (await call.promise).model;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  async function list() {
    // The host answers a page at a time (PROTOCOL.md, "Pages of a list").
    const ask = (cursor) => I.request("models.list", cursor ? { cursor, limit: 500 } : { limit: 500 }).promise;
    let page = await ask(null);
    let models = page.models;
    while (page.next_cursor) {
      page = await ask(page.next_cursor);
      models = models.concat(page.models);
    }
    return models;
  }

  // --- a Transformers.js custom cache (docs/design.md#page-api) ---------------------
  //
  //   env.useCustomCache = true; env.customCache = webmodels.cache;
  //
  // `put(url, response)` stores the bytes in the shared store (a Cross-Origin Storage
  // write, verified by the host) and remembers url -> SHA-256 in this origin's
  // localStorage; `match(url)` answers from the store (through the fast byte path) or
  // with undefined. The store keeps one copy however many sites put the same file;
  // each site still sees only what it put itself (or common models).
  const CACHE_PREFIX = "webmodels.cache:";

  function cacheKey(request) {
    const url = typeof request === "string" ? request : request?.url;
    if (typeof url !== "string" || url === "") throw new TypeError("a cache key is a URL or a Request");
    return CACHE_PREFIX + new URL(url, location.href).href;
  }

  function remembered(key) {
    try {
      const entry = JSON.parse(localStorage.getItem(key) ?? "null");
      return typeof entry?.sha256 === "string" ? entry : null;
    } catch {
      return null; // storage blocked, or an entry that is not ours
    }
  }

  async function sha256Hex(bytes) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  const cache = Object.freeze({
    async match(request) {
      const key = cacheKey(request);
      const entry = remembered(key);
      if (!entry) return undefined;
      try {
        const hash = { algorithm: "SHA-256", value: entry.sha256 };
        const file = await (await navigator.crossOriginStorage.requestFileHandle(hash)).getFile();
        const headers = { "Content-Length": String(file.size) };
        if (entry.type) headers["Content-Type"] = entry.type;
        return new Response(file, { status: 200, headers });
      } catch (error) {
        if (error?.name === "NotFoundError") localStorage.removeItem(key); // forgotten by the user
        return undefined;
      }
    },
    async put(request, response) {
      const key = cacheKey(request);
      const bytes = new Uint8Array(await response.arrayBuffer());
      const sha256 = await sha256Hex(bytes);
      const hash = { algorithm: "SHA-256", value: sha256 };
      const handle = await navigator.crossOriginStorage.requestFileHandle(hash, { create: true });
      const writable = await handle.createWritable();
      await writable.write(new Blob([bytes]));
      await writable.close(); // resolves once the host verified and stored the bytes
      const type = response.headers?.get?.("Content-Type") ?? null;
      try {
        localStorage.setItem(key, JSON.stringify({ sha256, type }));
      } catch {
        // storage full or blocked: the bytes are stored, this page just will not find them
      }
    },
    async delete(request) {
      const key = cacheKey(request);
      const had = remembered(key) !== null;
      localStorage.removeItem(key);
      return had;
    },
  });

  // --- Web Workers (page/worker-client.js) -------------------------------------------
  //
  // A worker cannot reach the extension; its page connects it with a MessagePort and
  // serves its calls with this API, so the worker has the page's partition exactly.

  const TAG = "__webmodels";

  function connectWorker(target) {
    if (typeof target?.postMessage !== "function") {
      throw new TypeError("connectWorker takes a Worker (or anything with postMessage)");
    }
    const channel = new MessageChannel();
    channel.port1.onmessage = (event) => serveWorker(channel.port1, event.data);
    target.postMessage({ [TAG]: "port", port: channel.port2 }, [channel.port2]);
  }

  async function cosHandle(sha256, create = false) {
    return navigator.crossOriginStorage.requestFileHandle({ algorithm: "SHA-256", value: sha256 }, { create });
  }

  const WORKER_OPS = {
    availability: (args) => availability(args.query),
    list: () => list(),
    async load(args, id, port) {
      const monitor = (m) =>
        m.addEventListener("downloadprogress", (e) => port.postMessage({ id, event: true, loaded: e.loaded, total: e.total }));
      return { ...(await load(args.query, { ...args.options, monitor })).info };
    },
    async read(args) {
      return (await load({ sha256: String(args.sha256) })).arrayBuffer();
    },
    // model.stream() in the worker: the page's own stream (bridge, or native-messaging
    // chunks), transferred to the worker; chunks go over as the worker pulls them.
    async stream(args) {
      return (await load({ sha256: String(args.sha256) })).stream();
    },
    async "cos.lookup"(args) {
      await cosHandle(String(args.sha256));
      return true;
    },
    async "cos.read"(args) {
      return (await (await cosHandle(String(args.sha256))).getFile()).arrayBuffer();
    },
    async "cos.write"(args) {
      const writable = await (await cosHandle(String(args.sha256), true)).createWritable();
      await writable.write(args.blob);
      await writable.close();
      return true;
    },
  };

  async function serveWorker(port, message) {
    if (message?.[TAG] !== 1 || !Object.hasOwn(WORKER_OPS, message.op)) return;
    const { id } = message;
    try {
      const value = await WORKER_OPS[message.op](message.args ?? {}, id, port);
      const transfer = value instanceof ArrayBuffer || value instanceof ReadableStream ? [value] : [];
      port.postMessage({ id, value }, transfer);
    } catch (error) {
      const wire = { name: error?.name ?? "UnknownError", message: String(error?.message ?? error), code: error?.webmodelsCode ?? null };
      port.postMessage({ id, error: wire });
    }
  }

  // The worker client as a blob: URL of this page's origin, made once per page: an
  // extension URL would name the extension (in Firefox a per-profile UUID).
  let workerUrl = null;

  function workerScript() {
    if (typeof workerSource !== "string") return null;
    workerUrl ??= URL.createObjectURL(new Blob([workerSource], { type: "text/javascript" }));
    return workerUrl;
  }

  const api = Object.freeze({
    availability,
    load,
    list,
    cache,
    connectWorker,
    /** The URL a connected worker imports (importScripts or import()). */
    get workerScript() {
      return workerScript();
    },
  });
  Object.defineProperty(window, "webmodels", { value: api, configurable: true, writable: true, enumerable: false });
})();
