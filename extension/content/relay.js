// Relay between a page's MAIN world (page/*.js) and the service worker; runs in
// the extension's ISOLATED world of every frame. A classic script (content scripts
// cannot be modules), so it is self-contained.
//
// page -> relay   window.postMessage({__webmodels: 1, dir: "to-extension", id, method, params})
// relay -> SW     port "webmodels-page": {id, method, params, user_activation}
// SW -> relay     {id, ok, result | error} and {event, id, ...}
// relay -> page   window.postMessage({__webmodels: 1, dir: "to-page", reply}) and,
//                 when the port closes, {__webmodels: 1, dir: "to-page", disconnected: true}
//
// It relays; it does not interpret. It adds the one thing only it can vouch for,
// the frame's user activation (read here, where the page cannot fake it), and drops
// everything else a page might add (a forged `context` or `origin`). Who the page is
// is decided by the service worker from the port's sender, never from a message.
(() => {
  "use strict";

  const TAG = "__webmodels";
  const PORT_NAME = "webmodels-page";
  // Replies go to this window only, addressed to its own origin. An opaque origin
  // ("null": sandboxed frames, data: documents) cannot be named as a target, so
  // "*" is used there; that is safe because the target is still this same window:
  // a message posted to a window is queued on that Window object, and a document
  // that replaced it by navigating has a new Window (and a new relay) that never
  // receives it.
  const targetOrigin = window.location.origin === "null" ? "*" : window.location.origin;
  let port = null;

  function toPage(fields) {
    window.postMessage({ [TAG]: 1, dir: "to-page", ...fields }, targetOrigin);
  }

  function connect() {
    const opened = chrome.runtime.connect({ name: PORT_NAME });
    opened.onMessage.addListener((reply) => toPage({ reply }));
    opened.onDisconnect.addListener(() => {
      if (port === opened) port = null;
      // The service worker (or the extension) went away with requests of ours in
      // flight; the page shim rejects or retries them, and the next request opens
      // a new port.
      toPage({ disconnected: true });
    });
    return opened;
  }

  function userActivation() {
    // Transient activation of this frame; Firefox before 120 has no userActivation.
    return navigator.userActivation?.isActive === true;
  }

  function relay(data) {
    const request = { id: data.id, method: data.method, params: data.params, user_activation: userActivation() };
    try {
      port ??= connect();
      port.postMessage(request);
    } catch (error) {
      // "Extension context invalidated": the extension was updated or removed
      // while this page stayed open. Only a reload of the page brings it back.
      port = null;
      const message = `the webmodels extension is not reachable (${error?.message ?? error}); reload the page`;
      toPage({ reply: { id: data.id, ok: false, error: { code: "internal", message, details: {}, name: "UnknownError" } } });
    }
  }

  // The extension's base URL, for what the page API offers by URL (the worker client
  // script, page/worker-client.js); chrome.runtime is not available in the MAIN world.
  toPage({ base: chrome.runtime.getURL("") });

  window.addEventListener("message", (event) => {
    if (event.source !== window) return; // other frames and windows are not ours to relay
    const data = event.data;
    if (data === null || typeof data !== "object" || data[TAG] !== 1 || data.dir !== "to-extension") return;
    relay(data);
  });
})();
