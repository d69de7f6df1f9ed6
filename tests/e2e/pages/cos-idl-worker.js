// A Web Worker that runs cos-idl-probe.js with the extension's worker client
// (tests/e2e/test_cos_idl.py): its page passes webmodels.workerScript as its name.
"use strict";
importScripts(self.name, "cos-idl-probe.js");

self.onmessage = async (event) => {
  try {
    postMessage(await self.cosIdlProbe(event.data));
  } catch (error) {
    postMessage({ failed: `${error?.name}: ${error?.message}` });
  }
};
