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
// The fast byte path (docs/design.md#fast-byte-paths) also runs here, so that nothing a page can read names
// the extension (in Firefox its URL holds a per-profile UUID, a tracking ID):
//
// page -> relay   window.postMessage({__webmodels: 1, dir: "to-bridge", ticket})
// relay -> bridge over a MessagePort (bridge/bridge.js, in a closed shadow root)
// relay -> page   window.postMessage({__webmodels: 1, dir: "from-bridge", ticket, buffer | error})
//
// and streamed reads (`model.stream()`): the bridge's response body, a ReadableStream
// the bridge transfers over a MessagePort the relay handed to the page, so bytes reach
// the page as the host sends them and a cancel in the page reaches the bridge's fetch:
//
// page -> relay   window.postMessage({__webmodels: 1, dir: "to-bridge", ticket, stream: true})
// relay -> page   window.postMessage({__webmodels: 1, dir: "from-bridge", ticket, port | error})
// bridge -> page  over that port: {body} | {error}
//
// and writes (a Blob, cloned by reference, to the ticket of a `cos.write.open`):
//
// page -> relay   window.postMessage({__webmodels: 1, dir: "to-bridge", ticket, blob, sha256})
// relay -> page   window.postMessage({__webmodels: 1, dir: "from-bridge", ticket, result | failure | error})
//
// When the bridge cannot carry a write (it did not start, the loopback listener cannot
// be reached, the host went away mid-PUT), the relay sends the Blob through native
// messaging itself, on a port of its own whose replies never reach the page: the page
// sees the same {ticket, result | failure} whichever path the bytes took.
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

  // --- the fast byte path's bridge ---------------------------------------------------
  //
  // The bridge frame lives in a closed shadow root made here, in the isolated world:
  // page script cannot reach the root (nor patch this world's attachShadow), so the
  // frame's src, which holds the extension's URL, is never in the page's DOM or
  // outerHTML. It is spoken to over a MessagePort handed to it once (port messages
  // carry no origin), and never posts to a window itself.

  const BRIDGE_PATH = "bridge/bridge.html";
  const BRIDGE_START_MS = 5_000;
  const BRIDGE_ANSWER_MS = 120_000;
  const waiting = new Map(); // ticket -> timer
  let bridge = null; // {holder, started: Promise<MessagePort>}

  function startBridge() {
    const extensionOrigin = chrome.runtime.getURL("").replace(/\/$/, "");
    const holder = document.createElement("span");
    holder.hidden = true;
    const root = holder.attachShadow({ mode: "closed" });
    const frame = document.createElement("iframe");
    frame.tabIndex = -1;
    frame.setAttribute("aria-hidden", "true");
    const channel = new MessageChannel();
    // Ready when the bridge's script answers on the port (not on "load": a frame a
    // policy blocked loads too, and would leave every read waiting for its timeout).
    const started = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the bridge did not start")), BRIDGE_START_MS);
      channel.port1.onmessage = (event) => {
        if (event.data?.ready !== true) return;
        clearTimeout(timer);
        channel.port1.onmessage = (answer) => fromBridge(answer.data);
        resolve(channel.port1);
      };
    });
    frame.addEventListener("load", () => {
      const hello = { [TAG]: 1, dir: "to-bridge", port: channel.port2 };
      frame.contentWindow?.postMessage(hello, extensionOrigin, [channel.port2]);
    }, { once: true });
    frame.src = chrome.runtime.getURL(BRIDGE_PATH);
    root.append(frame);
    (document.body ?? document.documentElement).append(holder);
    started.catch(() => {
      if (bridge?.started === started) bridge = null;
      channel.port1.close();
      holder.remove();
    });
    return { holder, started };
  }

  function toPageFromBridge(ticket, buffer, error) {
    const message = { [TAG]: 1, dir: "from-bridge", ticket };
    // No instanceof here: in Firefox the port's data may come from another compartment.
    // The page checks what it gets; something not transferable throws here.
    if (buffer != null) {
      try {
        window.postMessage({ ...message, buffer }, targetOrigin, [buffer]);
        return;
      } catch (failure) {
        error = failure?.message ?? failure;
      }
    }
    window.postMessage({ ...message, error: String(error ?? "the bridge sent no bytes") }, targetOrigin);
  }

  function fromBridge(data) {
    const ticket = String(data?.ticket);
    if (!waiting.has(ticket)) return;
    clearTimeout(waiting.get(ticket));
    waiting.delete(ticket);
    if (data.result != null || data.failure != null) {
      // A write's verdict: plain data, cloned (never anything of the bridge's window).
      writes.delete(ticket);
      const verdict = data.result != null ? { result: data.result } : { failure: data.failure };
      window.postMessage({ [TAG]: 1, dir: "from-bridge", ticket, ...verdict }, targetOrigin);
      return;
    }
    if (writes.has(ticket)) writeNatively(ticket); // the bridge could not carry it
    else toPageFromBridge(ticket, data.buffer, data.error);
  }

  // The bridge takes a frame load (~40–140 ms here) to start. A page that asks the
  // store for a file (a Cross-Origin Storage lookup, a model load) is likely to move
  // its bytes next — read them, or fetch them from the network and write them — so
  // the bridge starts then, while the page waits on its network, not at the write.
  const WARMS_BRIDGE = new Set(["cos.lookup", "models.load"]);

  function warmBridge(method) {
    if (!WARMS_BRIDGE.has(method) || bridge?.holder.isConnected || typeof document === "undefined") return;
    bridge = startBridge();
    bridge.started.catch(() => {}); // a bridge that cannot start: the transfer falls back then
  }

  async function viaBridge(ticket, blob, stream, sha256) {
    if (typeof ticket !== "string" || waiting.has(ticket) || writes.has(ticket)) return;
    const kind = Object.prototype.toString.call(blob); // no instanceof: Firefox hands us the page's Blob
    const write = stream !== true && (kind === "[object Blob]" || kind === "[object File]") && typeof sha256 === "string";
    if (write) writes.set(ticket, { blob, sha256 });
    try {
      if (!bridge?.holder.isConnected) bridge = startBridge(); // the page may have dropped it
      const port = await bridge.started;
      if (stream === true) {
        // A streamed read: the bridge answers on a port of the page's own, with the
        // response body (a ReadableStream transferred from this world never arrives in
        // the page's; one sent straight to a page port does). Port messages carry no
        // origin. The page times the answer out itself.
        const channel = new MessageChannel();
        port.postMessage({ ticket, stream: true, reply: channel.port1 }, [channel.port1]);
        window.postMessage({ [TAG]: 1, dir: "from-bridge", ticket, port: channel.port2 }, targetOrigin, [channel.port2]);
        return;
      }
      // A write may go through native messaging after a failed PUT (bridge.js): 1 s per MB more.
      const wait = BRIDGE_ANSWER_MS + (write ? blob.size / 1000 : 0);
      waiting.set(ticket, setTimeout(() => fromBridge({ ticket, error: "the bridge did not answer" }), wait));
      port.postMessage(write ? { ticket, blob } : { ticket }); // a write: its Blob, by reference
    } catch (error) {
      if (write) writeNatively(ticket);
      else toPageFromBridge(ticket, null, error?.message ?? error); // the page reads through native messaging
    }
  }

  // --- writes the bridge could not carry ----------------------------------------------
  //
  // Native messaging, from here: the page's messages are the same as for a bridge write,
  // and the bytes never pass through a message the page can read. The host hashes what
  // it receives and publishes only bytes whose SHA-256 and size are the announced ones,
  // from the first byte of this upload: what the bridge had sent before it failed was
  // dropped with its upload (uploads.py), so a file is never a mix of the two.

  // Where runtime ports carry Blobs (Firefox: structured clone), the Blob goes to the
  // service worker by reference in one `cos.write.blob` request, and the service worker
  // sends it through native messaging itself (one JSON hop: background/native-write.js);
  // a port that carries JSON (Chromium) delivers no Blob, the request is refused
  // (details.blob: false), and from then on the relay sends the chunks itself: raw bytes per
  // cos.write.chunk (base64 stays below the 64 MiB frame limit) and chunks in flight
  // (the host takes each in turn, up to 64 MiB ahead: uploads.py MAX_AHEAD).
  const BLOB_WRITE = "cos.write.blob";
  const UPLOAD_CHUNK = 16 << 20;
  const CHUNKS_IN_FLIGHT = 3;
  let portsCarryBlobs = true; // until the service worker says otherwise
  const writes = new Map(); // ticket -> {blob, sha256}, until its verdict
  const uploadCalls = new Map(); // id -> {resolve, reject}
  let uploadPort = null;
  let nextUploadId = 1;

  function connectUploads() {
    const opened = chrome.runtime.connect({ name: PORT_NAME });
    opened.onMessage.addListener((reply) => {
      const call = uploadCalls.get(reply?.id);
      if (!call || typeof reply.event === "string") return;
      uploadCalls.delete(reply.id);
      if (reply.ok === true) call.resolve(reply.result ?? {});
      else call.reject({ failure: reply.error });
    });
    opened.onDisconnect.addListener(() => {
      if (uploadPort === opened) uploadPort = null;
      const calls = [...uploadCalls.values()];
      uploadCalls.clear();
      for (const call of calls) call.reject(new Error("the webmodels extension restarted during this write"));
    });
    return opened;
  }

  /** One request on the relay's own port: its result, or a rejection with {failure}
   *  (the host's error, as the page would get it) or an Error (no extension). */
  function uploadCall(method, params) {
    return new Promise((resolve, reject) => {
      const id = nextUploadId++;
      uploadCalls.set(id, { resolve, reject });
      try {
        uploadPort ??= connectUploads();
        uploadPort.postMessage({ id, method, params, user_activation: userActivation() });
      } catch (error) {
        uploadCalls.delete(id);
        uploadPort = null;
        reject(error);
      }
    });
  }

  function toBase64(bytes) {
    if (typeof bytes.toBase64 === "function") return bytes.toBase64();
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  /** The host's `cos.write.commit` result for `blob`, sent in order, CHUNKS_IN_FLIGHT at
   *  a time (the next is read and encoded while the host takes the ones before it). */
  // A PUT cut because the host went away may fail before the service worker learns the
  // native port closed: a `begin` sent to that host is asked once more of the next.
  async function begin(params) {
    try {
      return await uploadCall("cos.write.begin", params);
    } catch (error) {
      if (!/^the webmodels host exited/.test(error?.failure?.message ?? "")) throw error;
      return uploadCall("cos.write.begin", params);
    }
  }

  async function uploadNatively(sha256, blob) {
    if (portsCarryBlobs) {
      try {
        return await uploadCall(BLOB_WRITE, { sha256, blob });
      } catch (error) {
        // Refused for want of a Blob, or not sent at all (a port that cannot clone one):
        // the chunks then; the host's own verdicts stand.
        if (error?.failure != null && error.failure.details?.blob !== false) throw error;
        portsCarryBlobs = false;
      }
    }
    return uploadChunks(sha256, blob);
  }

  async function uploadChunks(sha256, blob) {
    let { upload_id: uploadId } = await begin({ sha256, size: blob.size });
    try {
      const inFlight = [];
      for (let offset = 0; offset < blob.size; offset += UPLOAD_CHUNK) {
        const bytes = new Uint8Array(await blob.slice(offset, offset + UPLOAD_CHUNK).arrayBuffer());
        const sent = uploadCall("cos.write.chunk", { upload_id: uploadId, offset, data: toBase64(bytes) });
        sent.catch(() => {}); // awaited below; a failure aborts the upload (finally)
        inFlight.push(sent);
        if (inFlight.length >= CHUNKS_IN_FLIGHT) await inFlight.shift();
      }
      for (const sent of inFlight) await sent;
      const committing = uploadId;
      uploadId = null; // a failed commit leaves nothing open on the host
      return await uploadCall("cos.write.commit", { upload_id: committing });
    } finally {
      if (uploadId !== null) uploadCall("cos.write.abort", { upload_id: uploadId }).catch(() => {});
    }
  }

  async function writeNatively(ticket) {
    const { blob, sha256 } = writes.get(ticket);
    let verdict;
    try {
      verdict = { result: await uploadNatively(sha256, blob) };
    } catch (error) {
      verdict = error?.failure != null ? { failure: error.failure } : { error: String(error?.message ?? error) };
    }
    writes.delete(ticket);
    window.postMessage({ [TAG]: 1, dir: "from-bridge", ticket, ...verdict }, targetOrigin);
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window) return; // other frames and windows are not ours to relay
    const data = event.data;
    if (data === null || typeof data !== "object" || data[TAG] !== 1) return;
    if (data.dir === "to-extension") {
      relay(data);
      warmBridge(data.method);
    }
    else if (data.dir === "to-bridge") viaBridge(data.ticket, data.blob, data.stream, data.sha256);
  });
})();
