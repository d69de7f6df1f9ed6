// What the end-to-end tests (tests/e2e/test_page_api.py) call in a page, through
// Playwright's evaluate: small wrappers around navigator.crossOriginStorage and
// window.webmodels that return JSON (errors as {error: {name, code, message}}).
"use strict";

(() => {
  const TAG = "__webmodels";

  function describe(error) {
    return { error: { name: error?.name, code: error?.webmodelsCode ?? null, message: String(error?.message ?? error) } };
  }

  async function sha256Hex(data) {
    const digest = await crypto.subtle.digest("SHA-256", data);
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function fromBase64(text) {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  }

  async function outcome(work) {
    try {
      return await work();
    } catch (error) {
      return describe(error);
    }
  }

  /** Loads a model; its info, the progress events seen and the SHA-256 of the
   *  bytes read back (arrayBuffer() and stream() must agree). */
  function load(query, options = {}) {
    return outcome(async () => {
      const progress = [];
      const model = await window.webmodels.load(query, {
        ...options,
        monitor(m) {
          m.addEventListener("downloadprogress", (e) => progress.push([e.loaded, e.total]));
        },
      });
      const fromBuffer = await sha256Hex(await model.arrayBuffer());
      const streamed = await new Response(model.stream()).arrayBuffer();
      return { info: model.info, progress, sha256: fromBuffer, streamed: await sha256Hex(streamed) };
    });
  }

  /** Starts a load that the test aborts with `abortLoad()`. */
  let controller = null;
  let started = null;
  function startLoad(query) {
    controller = new AbortController();
    started = outcome(() => window.webmodels.load(query, { signal: controller.signal }).then((m) => ({ info: m.info })));
    return true;
  }
  function abortLoad() {
    controller.abort();
    return started;
  }
  function startedLoad() {
    return started;
  }

  function availability(query) {
    return outcome(async () => ({ availability: await window.webmodels.availability(query) }));
  }

  /** COS write of base64 `data` in `parts` write() calls under the hash `hex`. */
  function cosStore(hex, data, parts = 1) {
    return outcome(async () => {
      const bytes = fromBase64(data);
      const handle = await navigator.crossOriginStorage.requestFileHandle({ algorithm: "SHA-256", value: hex }, { create: true, origins: "*" });
      const writable = await handle.createWritable();
      const step = Math.ceil(bytes.length / parts);
      for (let at = 0; at < bytes.length; at += step) await writable.write(new Blob([bytes.subarray(at, at + step)]));
      await writable.close();
      return { stored: true };
    });
  }

  /** COS look-up; the SHA-256 and size of the File it gives. */
  function cosGet(hex, plural = false) {
    return outcome(async () => {
      const hash = { algorithm: "SHA-256", value: hex };
      const handle = plural
        ? (await navigator.crossOriginStorage.requestFileHandles([hash]))[0]
        : await navigator.crossOriginStorage.requestFileHandle(hash);
      const file = await handle.getFile();
      return { sha256: await sha256Hex(await file.arrayBuffer()), size: file.size, isFile: file instanceof File };
    });
  }

  /** Posts a raw relay message (anything a page could post) and returns the reply. */
  function raw(message, timeoutMs = 20000) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ timeout: true }), timeoutMs);
      window.addEventListener("message", function listen(event) {
        const data = event.data;
        if (event.source !== window || data?.[TAG] !== 1 || data.dir !== "to-page" || data.reply?.id !== message.id) return;
        if (typeof data.reply.event === "string") return;
        window.removeEventListener("message", listen);
        clearTimeout(timer);
        resolve(data.reply);
      });
      window.postMessage({ [TAG]: 1, dir: "to-extension", ...message }, "*");
    });
  }

  /** The fast byte path's messages (the bridge's bytes, posted by the relay) seen so far;
   *  streamed reads (model.stream(): a port the bridge answers on) in `bridgeStreams`. */
  const fromBridge = [];
  const streams = [];
  window.addEventListener("message", (event) => {
    if (event.data?.[TAG] === 1 && event.data.dir === "from-bridge" && "port" in event.data) {
      streams.push({ origin: event.origin, port: event.data.port instanceof MessagePort });
    } else if (event.data?.[TAG] === 1 && event.data.dir === "from-bridge" && event.data.ready !== true) {
      fromBridge.push({ origin: event.origin, bytes: event.data.buffer?.byteLength ?? null, error: event.data.error ?? null });
    }
  });
  const bridgeMessages = () => fromBridge.slice();
  const bridgeStreams = () => streams.slice();

  window.webmodelsTest = { load, startLoad, abortLoad, startedLoad, availability, cosStore, cosGet, raw, sha256Hex, bridgeMessages, bridgeStreams };

  window.addEventListener("DOMContentLoaded", () => {
    document.getElementById("origin").textContent = location.origin;
    const src = new URLSearchParams(location.search).get("frame");
    if (src) {
      const frame = document.createElement("iframe");
      frame.src = src;
      frame.title = "embedded test frame";
      document.getElementById("frames").append(frame);
    }
  });
})();
