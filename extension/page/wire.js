// Page side, part 1 of 4 (MAIN world; classic scripts, run in manifest order at
// document_start, before any script of the page): the line to the relay, bytes,
// errors. Parts 2 (cos.js), 3 (sessions.js) and 4 (webmodels-api.js) use what this
// one leaves under a symbol on the global object; part 4 deletes it, so the page
// never sees it.
//
// Nothing here is a security boundary: the page can post the relay's messages
// itself. Who the page is, is decided by the service worker.
(() => {
  "use strict";

  // Like the Cross-Origin Storage IDL ([SecureContext]): nothing on http: pages,
  // where any network attacker could write the page's requests.
  if (!window.isSecureContext) return;

  const INTERNALS = Symbol.for("webmodels.page-internals");
  const TAG = "__webmodels";
  const READ_CHUNK = 720 * 1024; // the host's largest models.read reply (PROTOCOL.md)
  const READS_IN_FLIGHT = 4;
  // Safe to repeat against a new service worker (and host) when the old one went
  // away mid-request; an upload is not: its upload id died with the old host.
  // Sessions died with the old host: creating one again is safe, and releasing
  // one there answers session_not_found, which release() takes as done.
  const RETRYABLE = new Set([
    "hello", "models.availability", "models.load", "models.list", "models.read", "cos.lookup",
    "sessions.create", "sessions.release",
  ]);

  const post = window.postMessage.bind(window);
  const targetOrigin = window.location.origin === "null" ? "*" : window.location.origin;
  const pending = new Map(); // id -> call
  let nextId = 1;

  // --- errors -------------------------------------------------------------------

  /** The DOMException for a wire error {code, message, details, name}: `name` is
   *  the DOM name the service worker mapped the code to, `webmodelsCode` the code. */
  function toDOMException(error) {
    const code = typeof error?.code === "string" ? error.code : "internal";
    const name = typeof error?.name === "string" ? error.name : "UnknownError";
    const text = typeof error?.message === "string" ? error.message : "the request failed";
    const exception = new DOMException(`${text} (webmodels: ${code})`, name);
    Object.defineProperty(exception, "webmodelsCode", { value: code, enumerable: true });
    Object.defineProperty(exception, "details", { value: error?.details ?? {}, enumerable: true });
    return exception;
  }

  function localError(code, message, name) {
    return toDOMException({ code, message, name });
  }

  // --- the line to the relay --------------------------------------------------------

  function send(call) {
    call.id = nextId++;
    pending.set(call.id, call);
    try {
      post({ [TAG]: 1, dir: "to-extension", id: call.id, method: call.method, params: call.params }, targetOrigin);
    } catch (error) {
      pending.delete(call.id); // params the browser cannot clone
      call.reject(new DOMException(`cannot send ${call.method}: ${error?.message ?? error}`, "DataCloneError"));
    }
  }

  /** Sends one request. Returns {promise, abort(reason)}; `onEvent(event)` gets the
   *  events tagged with the request (download.progress). */
  function request(method, params = {}, { onEvent = null } = {}) {
    const call = { id: 0, method, params, onEvent, retried: false, resolve: null, reject: null };
    const promise = new Promise((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    send(call);
    const abort = (reason) => {
      if (pending.get(call.id) !== call) return;
      pending.delete(call.id);
      call.reject(reason);
      request("models.cancel", { request_id: call.id }).promise.catch(() => {});
    };
    return { promise, abort };
  }

  function receive(message) {
    const call = pending.get(message?.id);
    if (!call) return;
    if (typeof message.event === "string") {
      call.onEvent?.(message);
      return;
    }
    pending.delete(call.id);
    if (message.ok === true) call.resolve(message.result ?? {});
    else call.reject(toDOMException(message.error));
  }

  function disconnected() {
    const calls = [...pending.values()];
    pending.clear();
    for (const call of calls) {
      if (RETRYABLE.has(call.method) && !call.retried) {
        call.retried = true;
        send(call); // under a new id: a late answer to the old one is ignored
      } else {
        call.reject(localError("internal", "the webmodels extension restarted during this request; try again", "UnknownError"));
      }
    }
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window) return;
    const data = event.data;
    if (data === null || typeof data !== "object" || data[TAG] !== 1 || data.dir !== "to-page") return;
    if (data.disconnected === true) disconnected();
    else receive(data.reply);
  });

  // --- bytes ------------------------------------------------------------------------

  function toBase64(bytes) {
    if (typeof bytes.toBase64 === "function") return bytes.toBase64();
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  function fromBase64(text) {
    if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(text);
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  /** The stored bytes of `sha256` (`size` bytes) in order from `start`, as Uint8Array
   *  chunks, with up to READS_IN_FLIGHT host reads under way. */
  function readChunks(sha256, size, start = 0) {
    return readParts("models.read", { sha256 }, size, start);
  }

  /** The same for any chunked read: `method` with `params` plus offset and length
   *  (`sessions.output` reads a large session output this way). */
  async function* readParts(method, params, size, start = 0) {
    const queue = [];
    let offset = start;
    const refill = () => {
      while (queue.length < READS_IN_FLIGHT && offset < size) {
        const length = Math.min(READ_CHUNK, size - offset);
        queue.push({ length, reply: request(method, { ...params, offset, length }).promise });
        offset += length;
      }
    };
    try {
      refill();
      while (queue.length > 0) {
        const { length, reply } = queue[0];
        const bytes = fromBase64((await reply).data);
        queue.shift();
        if (bytes.length !== length) {
          throw localError("internal", `the store returned ${bytes.length} bytes where ${length} were expected`, "UnknownError");
        }
        refill();
        yield bytes;
      }
    } finally {
      for (const { reply } of queue) reply.catch(() => {}); // abandoned read-ahead
    }
  }

  // --- the fast byte path (docs/design.md#fast-byte-paths) ------------------------------------
  //
  // A whole model at loopback speed: the service worker answers `models.open` with a
  // ticket (never the host's loopback URL); this window's relay (content/relay.js)
  // hands it to the extension's bridge frame, which it embeds where page script cannot
  // see it, and posts the ArrayBuffer back to this window. Nothing here names the
  // extension. Any failure (no bridge, an old host) leaves the caller to read through
  // native messaging instead.

  const FAST_MIN_BYTES = 2 * READ_CHUNK; // below this, chunks are as quick
  const FAST_TIMEOUT_MS = 120_000;
  const tickets = new Map(); // ticket -> {resolve, reject, timer, size}

  /** The whole model through the bridge, or a rejection (callers then use chunks). */
  function fastRead(sha256, size) {
    return fastFetch("models.open", { sha256 }, size);
  }

  /** The loopback response body of the model from byte `start` on (the whole model
   *  when 0), as a ReadableStream the bridge transferred (bytes arrive as the host sends
   *  them; nothing is buffered whole), or a rejection (callers then use chunks). */
  async function fastBody(sha256, size, start = 0) {
    const rest = size - start;
    if (rest < FAST_MIN_BYTES || typeof document === "undefined") throw new Error("not worth it");
    // The ticket is bound to the offset (the host serves only the bytes from there); a
    // host that ignored the offset would answer the whole size, which is refused.
    const params = start > 0 ? { sha256, offset: start } : { sha256 };
    return viaBridge("models.open", params, { size: rest, stream: true }, { stream: true });
  }

  // Resumes in a row without a new byte before a broken stream errors: the bridge from
  // the offset reached, then native messaging from there.
  const MAX_RESUMES = 2;

  /** The stored bytes of `sha256` (`size` bytes) as a ReadableStream of Uint8Array
   *  chunks, each delivered as it arrives: through the bridge, or through native
   *  messaging when the bridge fails before the first byte. A transfer that breaks after
   *  some bytes (the host restarted, the loopback connection was reset) resumes from the
   *  byte it reached: a new ticket for the rest through the bridge, else native messaging
   *  from there; never from zero, never a byte twice or missing. Where neither carries
   *  on, the stream errors (never ends short). cancel() stops the transfer (the cancel
   *  reaches the bridge's fetch, which closes the loopback connection). */
  function streamModel(sha256, size) {
    let source = null; // Promise<{reader, bridged}>
    let delivered = 0;
    let stalled = 0; // resumes since the last new byte
    const chunked = (start) => ({ reader: iteratorReader(readChunks(sha256, size, start)), bridged: false });
    const open = (start) =>
      fastBody(sha256, size, start).then((body) => ({ reader: body.getReader(), bridged: true }), () => chunked(start));
    const next = async () => {
      const current = await source;
      try {
        return await current.reader.read();
      } catch (error) {
        if (++stalled > MAX_RESUMES) throw error;
        current.reader.cancel(error).catch(() => {});
        // A bridge that broke after some bytes gets one more ticket from where it was;
        // one that broke before the first, or a second break, goes to native messaging.
        const again = current.bridged && delivered > 0 && stalled === 1;
        source = again ? open(delivered) : Promise.resolve(chunked(delivered));
        return next();
      }
    };
    return new ReadableStream({
      async pull(controller) {
        source ??= open(0);
        const { value, done } = await next();
        if (done) {
          if (delivered !== size) throw broken(delivered, size);
          controller.close();
          return;
        }
        const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
        delivered += bytes.length;
        if (delivered > size) throw broken(delivered, size);
        if (bytes.length > 0) stalled = 0;
        if (bytes.length > 0) controller.enqueue(bytes);
      },
      async cancel(reason) {
        const current = await source?.catch(() => null);
        await current?.reader.cancel(reason).catch(() => {});
      },
    }, { highWaterMark: 0 }); // read ahead only what the caller asks for
  }

  const BLOB_PART_BYTES = 8 << 20;

  /** The stored bytes of `sha256` as Blob parts of about BLOB_PART_BYTES, each made
   *  as its bytes arrive from streamModel(): no buffer of the whole size ever exists
   *  in the page (an ArrayBuffer could not hold a multi-GB model), and the browser may
   *  keep the parts on disk (Chromium pages blob data over its memory quota out to
   *  files). `new Blob(parts)` / `new File(parts, name)` of them is the whole model. */
  async function blobParts(sha256, size) {
    const parts = [], pending = [];
    let pendingBytes = 0;
    const reader = streamModel(sha256, size).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending.push(value);
      pendingBytes += value.length;
      if (pendingBytes >= BLOB_PART_BYTES) {
        parts.push(new Blob(pending)); // copies: the chunks can go
        pending.length = 0;
        pendingBytes = 0;
      }
    }
    if (pending.length > 0) parts.push(new Blob(pending));
    return parts;
  }

  function broken(delivered, size) {
    return localError("internal", `the transfer ended after ${delivered} of ${size} bytes`, "NetworkError");
  }

  /** An async iterator as a reader: read() and cancel(). */
  function iteratorReader(iterator) {
    return {
      read: () => iterator.next(),
      cancel: async () => {
        await iterator.return();
      },
    };
  }

  /** Bytes through the bridge: `method` (models.open, sessions.output_open) gives
   *  the service worker's ticket for them. */
  async function fastFetch(method, params, size) {
    if (size < FAST_MIN_BYTES || typeof document === "undefined") throw new Error("not worth it");
    return viaBridge(method, params, { size }, {});
  }

  /** Asks `method` for a ticket, hands it (and `extra`, e.g. a Blob) to the bridge, and
   *  settles with the bridge's answer; `entry` says what the answer is ({size} or
   *  {write: true}). Rejects when the bridge stays silent. */
  async function viaBridge(method, params, entry, extra, timeoutMs = FAST_TIMEOUT_MS) {
    const { ticket, size } = await request(method, params).promise;
    if (typeof ticket !== "string") throw new Error("no ticket");
    if (entry.stream && size !== entry.size) throw new Error(`a ticket for ${size} bytes, not ${entry.size}`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        tickets.delete(ticket);
        reject(new Error("the bridge did not answer"));
      }, timeoutMs);
      tickets.set(ticket, { resolve, reject, timer, ...entry });
      post({ [TAG]: 1, dir: "to-bridge", ticket, ...extra }, targetOrigin);
    });
  }

  /** A Cross-Origin Storage write through the bridge: `params` ({sha256, size}) open a
   *  one-time upload URL that only the bridge sees, and `blob` goes to it whole (a
   *  Blob is cloned by reference: no base64, no copy). Resolves with the host's verdict,
   *  {result} or {failure} (its error); rejects when neither the bridge nor the relay's
   *  native messaging could carry it (callers then upload through native messaging). */
  async function fastWrite(params, blob) {
    if (blob.size < FAST_MIN_BYTES || typeof document === "undefined") throw new Error("not worth it");
    // The relay sends it through native messaging itself if the bridge cannot (relay.js),
    // so the answer may take twice as long as the relay waits for the bridge.
    const timeoutMs = 2 * (FAST_TIMEOUT_MS + blob.size / 1000);
    return viaBridge("cos.write.open", params, { write: true }, { blob, sha256: params.sha256 }, timeoutMs);
  }

  /** A streamed read's answer, on the port the relay gave: the bridge's response body
   *  (a ReadableStream), or why there is none. */
  function bodyFrom(port, waiting) {
    const timer = setTimeout(() => {
      port.close();
      waiting.reject(new Error("the bridge did not answer"));
    }, FAST_TIMEOUT_MS);
    port.onmessage = (event) => {
      clearTimeout(timer);
      port.close();
      if (event.data?.body instanceof ReadableStream) waiting.resolve(event.data.body);
      else waiting.reject(new Error(event.data?.error ?? "the bridge sent no stream"));
    };
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window) return; // the relay posts to its own window
    const data = event.data;
    if (data === null || typeof data !== "object" || data[TAG] !== 1 || data.dir !== "from-bridge") return;
    const waiting = tickets.get(data.ticket);
    if (!waiting) return;
    tickets.delete(data.ticket);
    clearTimeout(waiting.timer);
    if (waiting.write) {
      if (data.result != null) waiting.resolve({ result: data.result });
      else if (data.failure != null) waiting.resolve({ failure: data.failure });
      else waiting.reject(new Error(data.error ?? "the bridge sent no verdict"));
      return;
    }
    if (waiting.stream) {
      if (data.port instanceof MessagePort) bodyFrom(data.port, waiting);
      else waiting.reject(new Error(data.error ?? "the bridge sent no stream"));
      return;
    }
    if (data.buffer instanceof ArrayBuffer && data.buffer.byteLength === waiting.size) waiting.resolve(data.buffer);
    else waiting.reject(new Error(data.error ?? "the bridge sent no bytes"));
  });

  globalThis[INTERNALS] = Object.freeze({
    request, toDOMException, localError, toBase64, fromBase64, readChunks, readParts, streamModel, blobParts, fastRead, fastFetch, fastWrite,
  });
})();
