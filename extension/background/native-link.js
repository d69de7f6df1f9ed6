// The one native-messaging port to the host (`webmodels serve`).
//
// Chromium starts one host process per connectNative port, and an open native port
// keeps an MV3 service worker alive, so one port is opened on first use and kept
// open. When the host exits (or cannot start), every request in flight is answered
// with an `internal` error saying so, and the next request starts a new host: the
// reconnection is lazy, so a host that cannot start is not restarted in a loop.

import { hostExited } from "../shared/errors.js";

export const NATIVE_HOST = "org.webmodels.host";

export class NativeLink {
  #runtime;
  #log;
  #greeting;
  #port = null;
  #pending = new Map(); // host request id -> {onReply, onEvent}

  /** `runtime`: chrome.runtime (connectNative, lastError). `greeting()`: the request
   *  sent first on every new port (the extension introducing itself to the host);
   *  its reply is not waited for. */
  constructor(runtime, { log = console, greeting = null } = {}) {
    this.#runtime = runtime;
    this.#log = log;
    this.#greeting = greeting;
  }

  /** Sends `message` ({id, method, params, context}); `onReply(reply)` runs exactly
   *  once, with the host's reply or with an `internal` failure if the host went
   *  away first; `onEvent(event)` runs for each event tagged with the id. */
  send(message, { onReply, onEvent = () => {} }) {
    let port;
    try {
      port = this.#open();
    } catch (error) {
      onReply({ id: message.id, ok: false, error: hostExited(error?.message) });
      return;
    }
    this.#pending.set(message.id, { onReply, onEvent });
    try {
      port.postMessage(message);
    } catch (error) {
      // The port died between opening and posting (its onDisconnect comes later).
      this.#pending.delete(message.id);
      onReply({ id: message.id, ok: false, error: hostExited(error?.message) });
    }
  }

  /** Sends a request whose reply nobody waits for (clean-up: cancel, abort). */
  notify(message) {
    this.send(message, { onReply: () => {} });
  }

  get connected() {
    return this.#port !== null;
  }

  get inFlight() {
    return this.#pending.size;
  }

  #open() {
    if (this.#port) return this.#port;
    const port = this.#runtime.connectNative(NATIVE_HOST);
    port.onMessage.addListener((message) => this.#receive(message));
    port.onDisconnect.addListener((closed) => this.#disconnected(port, closed));
    this.#port = port;
    if (this.#greeting) {
      const first = this.#greeting();
      this.#pending.set(first.id, { onReply: () => {}, onEvent: () => {} });
      port.postMessage(first);
    }
    return port;
  }

  #receive(message) {
    if (message === null || typeof message !== "object") return;
    const entry = this.#pending.get(message.id);
    if (typeof message.event === "string") {
      entry?.onEvent(message);
      return;
    }
    if (!entry) {
      // `id: null`: the host could not read a frame of ours. The sizes we send are
      // checked before sending, so this is a bug worth a line in the log.
      this.#log.warn("webmodels: reply for no request in flight", message);
      return;
    }
    this.#pending.delete(message.id);
    entry.onReply(message);
  }

  #disconnected(port, closed) {
    if (this.#port !== port) return;
    this.#port = null;
    // Chromium: runtime.lastError during onDisconnect; Firefox: port.error.
    const reason = this.#runtime.lastError?.message ?? closed?.error?.message;
    const error = hostExited(reason);
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [id, entry] of pending) entry.onReply({ id, ok: false, error });
  }
}
