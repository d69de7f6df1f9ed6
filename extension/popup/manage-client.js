// The popup's line to the service worker: one runtime port named
// "webmodels-manage"; requests {id, method, params}, replies {id, ok, result|error},
// events {event, id, ...}. The service worker adds the trusted context; nothing
// here can (or needs to) claim it.

export const PORT_NAME = "webmodels-manage";
const CALL_TIMEOUT_MS = 30_000;

/** A failed call: the host's (or service worker's) code, message and details. */
export class ManageError extends Error {
  constructor(code, message, details = {}) {
    super(message);
    this.name = "ManageError";
    this.code = code;
    this.details = details ?? {};
  }
}

export class ManageClient {
  #port = null;
  #nextId = 1;
  #pending = new Map();
  #onEvent;
  #onDisconnect;

  /** `onEvent(message)` gets host events; `onDisconnect(reason)` fires when the
   *  port closes (the next call opens a new one). */
  constructor({ onEvent = () => {}, onDisconnect = () => {} } = {}) {
    this.#onEvent = onEvent;
    this.#onDisconnect = onDisconnect;
  }

  call(method, params = {}) {
    const port = this.#connect();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new ManageError("timeout", `${method}: no answer in ${CALL_TIMEOUT_MS / 1000} s`));
      }, CALL_TIMEOUT_MS);
      this.#pending.set(id, { resolve, reject, timer, method });
      try {
        port.postMessage({ id, method, params });
      } catch (error) {
        this.#settle(id, { ok: false, error: { code: "disconnected", message: String(error?.message ?? error) } });
      }
    });
  }

  close() {
    this.#port?.disconnect();
    this.#port = null;
  }

  #connect() {
    if (this.#port) return this.#port;
    const port = chrome.runtime.connect({ name: PORT_NAME });
    port.onMessage.addListener((message) => this.#receive(message));
    port.onDisconnect.addListener(() => {
      const reason = chrome.runtime.lastError?.message ?? "the extension closed the connection";
      if (this.#port === port) this.#port = null;
      for (const id of [...this.#pending.keys()]) {
        this.#settle(id, { ok: false, error: { code: "disconnected", message: reason } });
      }
      this.#onDisconnect(reason);
    });
    this.#port = port;
    return port;
  }

  #receive(message) {
    if (!message || typeof message !== "object") return;
    if (typeof message.event === "string") {
      this.#onEvent(message);
    } else if (this.#pending.has(message.id)) {
      this.#settle(message.id, message);
    }
  }

  #settle(id, reply) {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    if (reply.ok) {
      pending.resolve(reply.result ?? {});
    } else {
      const error = reply.error ?? {};
      pending.reject(
        new ManageError(error.code ?? "internal", error.message ?? `${pending.method} failed`, error.details),
      );
    }
  }
}
