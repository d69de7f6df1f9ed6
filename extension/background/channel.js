// One caller's runtime port (a page frame's relay, or one of the extension's own
// pages) and its requests to the host.
//
// The caller picks its request ids; the host sees ids of ours (unique per native
// port), and replies and events go back to the caller under the caller's id. The
// `context` of every request is written here, from what the browser told us about
// the port (`makeContext`), over anything the caller sent. Params, which may carry
// model bytes, are passed through untouched and never kept.

import { errorForPage, failure } from "../shared/errors.js";
import { parseRequest } from "../shared/routes.js";

// Browser -> host frames are capped at 64 MiB; leave room for the envelope.
// (Base64 is ASCII, so characters are bytes for the chunks that come close.)
export const MAX_PARAMS_CHARS = 60 << 20;

/** About how many characters `params` take as JSON, without copying the bulk
 *  `data` string of an upload chunk. */
export function paramsSize(params) {
  if (typeof params.data !== "string") return JSON.stringify(params).length;
  return params.data.length + JSON.stringify({ ...params, data: "" }).length;
}

// A whole Blob to store (Firefox: its runtime ports carry Blobs by structured clone;
// Chromium's carry JSON, where a Blob arrives as {} and is refused). The service worker
// sends it through native messaging itself (native-write.js), so the bytes cross one
// JSON hop instead of two: {sha256, blob} -> the cos.write.commit result.
// `chunk_kib` (256-16384) and `in_flight` (1-4) override the upload's defaults (benchmarks).
export const BLOB_WRITE = "cos.write.blob";

function isBlob(value) {
  const kind = Object.prototype.toString.call(value);
  return kind === "[object Blob]" || kind === "[object File]";
}

function clamp(value, low, high) {
  return Number.isInteger(value) ? Math.min(high, Math.max(low, value)) : undefined;
}

export class Channel {
  #port;
  #link;
  #routes;
  #nextId;
  #makeContext;
  #refusal;
  #rewrite;
  #uploadBlob;
  #uploads = new Set(); // upload ids begun here and not yet committed or aborted
  // Begins and session creations in flight when the caller left (host id -> method):
  // their replies open an upload or a session nobody will finish, so they are undone.
  #leftBehind = new Map();
  #sessions = new Set(); // session ids created here and not yet released
  #closed = false;

  /** `makeContext(message)` -> the context for the host; `refusal`: an error that
   *  answers every request instead (a caller the browser could not vouch for). */
  /** `rewrite(method, result, route)`: what the caller gets of a successful result (page
   *  ports swap `models.open`'s loopback URL for a ticket). */
  /** `uploadBlob(context, sha256, blob, options)`: native-write.js's blobUploader, with
   *  this browser's chunk size and chunks in flight (null: BLOB_WRITE is refused). */
  constructor(port, { link, routes, nextId, makeContext, refusal = null, rewrite = null, uploadBlob = null, ready = Promise.resolve() }) {
    this.#port = port;
    this.#link = link;
    this.#routes = routes;
    this.#nextId = nextId;
    this.#makeContext = makeContext;
    this.#refusal = refusal;
    this.#rewrite = rewrite;
    this.#uploadBlob = uploadBlob;
    // Listeners are added synchronously (the port would otherwise lose messages);
    // requests wait for `ready` (the id epoch read from storage) in arrival order.
    port.onMessage.addListener((message) => {
      ready.then(() => this.#receive(message));
    });
    port.onDisconnect.addListener(() => this.#close());
  }

  #receive(message) {
    if (this.#closed) return;
    const parsed = parseRequest(message);
    if (!parsed.ok) {
      if (parsed.id !== null) this.#post({ id: parsed.id, ok: false, error: errorForPage(parsed.error) });
      return;
    }
    const { id, method, params } = parsed.request;
    if (this.#refusal) {
      this.#post({ id, ok: false, error: errorForPage(this.#refusal) });
    } else if (paramsSize(params) > MAX_PARAMS_CHARS) {
      this.#fail(id, "too_large", `a request may carry at most ${MAX_PARAMS_CHARS} characters of params`);
    } else if (method === BLOB_WRITE) {
      this.#writeBlob(id, params, message);
    } else if (method === "models.cancel") {
      this.#cancel(id, params, message);
    } else {
      this.#forward(id, method, params, message);
    }
  }

  #forward(callerId, method, params, message) {
    const hostId = this.#nextId();
    // A write URL's ticket also carries the write's SHA-256 (tickets.js: what the bridge
    // hands the service worker if it cannot PUT); no other params are kept.
    const sha256 = method === "cos.write.open" ? params.sha256 : undefined;
    if (!this.#routes.add(hostId, { channel: this, callerId, method, sha256 })) {
      this.#fail(callerId, "bad_request", "a request with this id is already in flight");
      return;
    }
    if (method === "cos.write.commit" || method === "cos.write.abort") {
      this.#uploads.delete(params.upload_id);
    }
    if (method === "sessions.release") this.#sessions.delete(params.session_id);
    const context = this.#makeContext(message);
    this.#link.send(
      { id: hostId, method, params, context },
      {
        onReply: (reply) => this.#reply(hostId, reply),
        onEvent: (event) => this.#event(hostId, event),
      },
    );
  }

  async #writeBlob(callerId, params, message) {
    const { sha256, blob } = params;
    if (this.#uploadBlob === null || !isBlob(blob) || typeof sha256 !== "string") {
      const message = `${BLOB_WRITE} takes {sha256, blob} where ports carry Blobs`;
      this.#post({ id: callerId, ok: false, error: errorForPage(failure(callerId, "bad_request", message, { blob: false }).error) });
      return;
    }
    const options = { stopped: () => this.#closed };
    const chunkKib = clamp(params.chunk_kib, 256, 16 << 10);
    const inFlight = clamp(params.in_flight, 1, 4);
    if (chunkKib !== undefined) options.chunk = chunkKib << 10;
    if (inFlight !== undefined) options.inFlight = inFlight;
    try {
      const result = await this.#uploadBlob(this.#makeContext(message), sha256, blob, options);
      this.#post({ id: callerId, ok: true, result });
    } catch (error) {
      if (error?.failure != null) this.#post({ id: callerId, ok: false, error: errorForPage(error.failure) });
      else this.#fail(callerId, "internal", String(error?.message ?? error));
    }
  }

  /** A caller cancels by its own id; the host knows the request by ours. */
  #cancel(callerId, params, message) {
    const target = this.#routes.hostIdFor(this, params.request_id);
    if (target === undefined) {
      this.#post({ id: callerId, ok: true, result: { cancelled: false } });
      return;
    }
    this.#forward(callerId, "models.cancel", { request_id: target }, message);
  }

  #reply(hostId, reply) {
    const route = this.#routes.take(hostId);
    const method = route?.method ?? this.#leftBehind.get(hostId);
    this.#leftBehind.delete(hostId);
    const begun = method === "cos.write.begin" && reply.ok ? reply.result?.upload_id : undefined;
    const created = method === "sessions.create" && reply.ok ? reply.result?.session_id : undefined;
    if (!route || this.#closed) {
      if (typeof begun === "string") this.#abortUpload(begun);
      if (typeof created === "string") this.#notify("sessions.release", { session_id: created });
      return;
    }
    if (typeof begun === "string") this.#uploads.add(begun);
    if (typeof created === "string") this.#sessions.add(created);
    if (reply.ok) {
      const result = reply.result ?? {};
      const seen = this.#rewrite ? this.#rewrite(route.method, result, route) : result;
      this.#post({ id: route.callerId, ok: true, result: seen });
    } else {
      this.#post({ id: route.callerId, ok: false, error: errorForPage(reply.error) });
    }
  }

  #event(hostId, event) {
    const route = this.#routes.get(hostId);
    if (!route || this.#closed) return;
    const { event: name, id: _hostId, ...fields } = event;
    this.#post({ ...fields, event: name, id: route.callerId });
  }

  /** The caller went away (frame navigated or closed, popup closed): what it
   *  started and nobody else needs is stopped (downloads, uploads, sessions); late
   *  replies are dropped. */
  #close() {
    this.#closed = true;
    for (const [hostId, route] of this.#routes.dropChannel(this)) {
      if (route?.method === "models.load") {
        this.#notify("models.cancel", { request_id: hostId });
      } else if (route?.method === "cos.write.begin" || route?.method === "sessions.create") {
        // Answered after the caller left: what the reply opens is undone (#reply).
        this.#leftBehind.set(hostId, route.method);
      }
    }
    for (const uploadId of this.#uploads) this.#abortUpload(uploadId);
    this.#uploads.clear();
    // Its sessions hold the partition's session slots and the runtime's memory: free
    // them now rather than at the host's idle timeout.
    for (const sessionId of this.#sessions) this.#notify("sessions.release", { session_id: sessionId });
    this.#sessions.clear();
  }

  #abortUpload(uploadId) {
    this.#notify("cos.write.abort", { upload_id: uploadId });
  }

  #notify(method, params) {
    if (this.#refusal) return;
    this.#link.notify({ id: this.#nextId(), method, params, context: this.#makeContext({}) });
  }

  #fail(id, code, message) {
    this.#post({ id, ok: false, error: errorForPage(failure(id, code, message).error) });
  }

  #post(message) {
    if (this.#closed) return;
    try {
      this.#port.postMessage(message);
    } catch {
      // The port closed under us; its onDisconnect cleans up.
    }
  }
}
