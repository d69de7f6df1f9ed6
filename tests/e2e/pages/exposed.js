// What a page can read of the extension, gathered as a tracker would
// (tests/e2e/test_no_extension_id.py): every message event on this window from the
// start (origin and data), the API objects walked (property values, getters, function
// texts), the DOM, resource timing, frames, error texts and stacks, the worker's view.
// The test asserts that none of it names the extension (in Firefox its URL holds a
// per-profile UUID).
"use strict";

(() => {
  const messages = [];
  window.addEventListener("message", (event) => {
    messages.push({ origin: event.origin, data: describe(event.data) });
  });

  function describe(value) {
    try {
      return JSON.stringify(value, (_key, v) => {
        if (v instanceof ArrayBuffer) return `ArrayBuffer(${v.byteLength})`;
        if (typeof MessagePort === "function" && v instanceof MessagePort) return "MessagePort";
        return v;
      });
    } catch (error) {
      return `unserialisable: ${error}`;
    }
  }

  /** Every string reachable from `value`: own and inherited properties (getters run on
   *  the object), function texts and names, a few levels deep. */
  function walk(value, out, depth = 0, seen = new Set()) {
    if (value === null || value === undefined) return;
    if (typeof value !== "object" && typeof value !== "function") {
      out.push(String(value));
      return;
    }
    if (seen.has(value) || depth > 4) return;
    seen.add(value);
    if (typeof value === "function") out.push(String(value));
    for (let proto = value; proto && proto !== Object.prototype && proto !== Function.prototype; proto = Object.getPrototypeOf(proto)) {
      for (const key of Reflect.ownKeys(proto)) {
        out.push(String(key));
        let inner;
        try {
          inner = Reflect.get(proto, key, value);
        } catch (error) {
          out.push(`${error?.name}: ${error?.message}`);
          continue;
        }
        walk(inner, out, depth + 1, seen);
      }
    }
  }

  function errorTexts(error, out, stacks) {
    out.push(String(error), String(error?.name), String(error?.message), describe(error));
    stacks.push(String(error?.stack ?? ""));
  }

  function runWorker(query) {
    const worker = new Worker("worker-test.js", { name: webmodels.workerScript });
    webmodels.connectWorker(worker);
    return new Promise((resolve) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => resolve({ error: String(event.message) });
      worker.postMessage({ query, data: btoa("bytes a worker stores") });
    });
  }

  async function collectExposed(query) {
    const strings = [];
    const stacks = [];
    const progressStacks = [];
    // A load with progress (page code called from the API), and the fast byte path.
    const model = await webmodels.load(query, {
      monitor(m) {
        progressStacks.push(new Error("from a monitor").stack);
        m.addEventListener("downloadprogress", () => progressStacks.push(new Error("from progress").stack));
      },
    });
    const bytes = (await model.arrayBuffer()).byteLength;
    const streamed = (await new Response(model.stream()).arrayBuffer()).byteLength;
    walk(model, strings);
    const handle = await navigator.crossOriginStorage.requestFileHandle({ algorithm: "SHA-256", value: model.info.sha256 });
    walk(handle, strings);
    const file = await handle.getFile();
    strings.push(file.name, file.type);
    // A connected worker.
    const fromWorker = await runWorker(query);
    strings.push(describe(fromWorker));
    // Errors: a host error, a bad argument, an absent COS file.
    for (const attempt of [
      () => webmodels.load({ sha256: "0".repeat(64) }),
      () => webmodels.load(5),
      () => navigator.crossOriginStorage.requestFileHandle({ algorithm: "SHA-256", value: "1".repeat(64) }),
      () => webmodels.connectWorker(null),
    ]) {
      try {
        await attempt();
        strings.push("no error");
      } catch (error) {
        errorTexts(error, strings, stacks);
      }
    }
    // The API objects, the DOM, resource timing, frames.
    walk(window.webmodels, strings);
    walk(navigator.crossOriginStorage, strings);
    strings.push(document.documentElement.outerHTML);
    if (typeof document.documentElement.getHTML === "function") {
      strings.push(document.documentElement.getHTML({ serializableShadowRoots: true }));
    }
    for (const entry of performance.getEntries()) strings.push(entry.name, describe(entry.toJSON?.()));
    for (let i = 0; i < window.length; i++) {
      try {
        strings.push(String(window.frames[i].location.href));
      } catch (error) {
        errorTexts(error, strings, stacks);
      }
    }
    for (const element of document.querySelectorAll("*")) {
      if (element.shadowRoot) strings.push(element.shadowRoot.innerHTML);
    }
    for (const m of messages) strings.push(m.origin, m.data);
    return {
      strings, stacks, progressStacks, bytes, streamed, size: model.info.size,
      workerOk: !("error" in fromWorker), messageOrigins: [...new Set(messages.map((m) => m.origin))],
      workerScript: webmodels.workerScript, frames: window.length,
    };
  }

  window.collectExposed = collectExposed;
})();
