// A Web Worker that uses the page API through the extension's worker client
// (extension/page/worker-client.js), as tests/e2e/test_worker.py drives it: its page
// passes webmodels.workerScript as the worker's name and connects it.
"use strict";
importScripts(self.name);

const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");

self.onmessage = async (event) => {
  const { query, data } = event.data;
  try {
    const progress = [];
    const model = await webmodels.load(query, {
      monitor: (m) => m.addEventListener("downloadprogress", (e) => progress.push([e.loaded, e.total])),
    });
    const sha256 = hex(await crypto.subtle.digest("SHA-256", await model.arrayBuffer()));
    // Cross-Origin Storage as Transformers.js uses it: look up, store, look up again.
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const hash = { algorithm: "SHA-256", value: hex(await crypto.subtle.digest("SHA-256", bytes)) };
    let absentBefore = null;
    try {
      await navigator.crossOriginStorage.requestFileHandle(hash);
      absentBefore = false;
    } catch (error) {
      absentBefore = error.name === "NotFoundError";
    }
    const writable = await (await navigator.crossOriginStorage.requestFileHandle(hash, { create: true })).createWritable();
    await writable.write(new Blob([bytes]));
    await writable.close();
    const file = await (await navigator.crossOriginStorage.requestFileHandle(hash)).getFile();
    const storedSha256 = hex(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
    postMessage({
      info: model.info,
      sha256,
      progress,
      absentBefore,
      storedSha256,
      availability: await webmodels.availability({ sha256: hash.value }),
    });
  } catch (error) {
    postMessage({ error: `${error.name}: ${error.message}` });
  }
};
