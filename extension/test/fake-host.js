// A native host that speaks the protocol (PROTOCOL.md) from memory, for the
// extension's Node tests: enough of models.*, cos.* and manage.* to drive the page
// API end to end, and a record of every request it saw (with its context).

import { createHash } from "node:crypto";

const READ_CHUNK = 720 * 1024;
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
const keyOf = (context) => (context?.partition ? `${context.partition.top_site} ${context.partition.origin}` : null);

export class FakeHost {
  constructor({ network = {} } = {}) {
    this.network = new Map(Object.entries(network).map(([url, bytes]) => [url, Buffer.from(bytes)]));
    this.blobs = new Map(); // sha256 -> {data, sites: Set}
    this.seen = [];
    this.greetings = []; // the service worker's trusted hello {extension_origin}, not in `seen`
    this.port = null;
    this.holdLoads = false; // when true, downloads wait for release()
    this.held = [];
    this.loads = new Map(); // request id -> {key, fail}
    this.uploads = new Map();
    this.starts = 0;
  }

  attach(port) {
    this.port = port;
    this.starts++;
    port.onMessage.addListener((message) => this.#handle(message));
    port.onDisconnect.addListener(() => {
      if (this.port === port) this.port = null;
      this.uploads.clear(); // they die with the process
      this.loads.clear();
      this.held = [];
    });
  }

  /** The host process dies (`reason` is what the browser reports). */
  exit(reason) {
    this.port?.disconnect(reason);
    this.port = null;
  }

  release() {
    const held = this.held;
    this.held = [];
    for (const go of held) go();
  }

  store(bytes, key) {
    const digest = sha256(bytes);
    const blob = this.blobs.get(digest) ?? { data: Buffer.from(bytes), sites: new Set() };
    if (key) blob.sites.add(key);
    this.blobs.set(digest, blob);
    return digest;
  }

  #send(message) {
    this.port?.postMessage(message);
  }

  #ok(id, result) {
    this.#send({ id, ok: true, result });
  }

  #fail(id, code, message = code) {
    this.#send({ id, ok: false, error: { code, message, details: {} } });
  }

  #visible(digest, context) {
    const blob = this.blobs.get(digest);
    return blob && (context.trusted || blob.sites.has(keyOf(context))) ? blob : null;
  }

  #info(digest) {
    return { sha256: digest, size: this.blobs.get(digest).data.length, format: "binary", source: "downloaded" };
  }

  #handle(message) {
    if (message?.method === "hello" && message.params?.extension_origin !== undefined && message.context?.trusted) {
      this.greetings.push(message);
      return this.#ok(message.id, { protocol_version: 1, trusted: message.context?.trusted === true });
    }
    this.seen.push(message);
    const { id, method, params = {}, context } = message;
    if (!context) return this.#fail(id, "bad_request", "no context");
    const handler = this.methods[method];
    if (!handler) return this.#fail(id, "unknown_method");
    if (method.startsWith("manage.") && !context.trusted) return this.#fail(id, "access_denied", `${method} is only for the extension's own pages`);
    return handler.call(this, id, params, context);
  }

  methods = {
    hello(id, _params, context) {
      this.#ok(id, { protocol_version: 1, trusted: context.trusted === true });
    },
    "models.availability"(id, { query }, context) {
      const digest = query.sha256 ?? hexOf(query.integrity);
      if (this.#visible(digest, context)) return this.#ok(id, { availability: "available" });
      this.#ok(id, { availability: query.url ? "downloadable" : "unavailable" });
    },
    "models.load"(id, { query }, context) {
      const digest = query.sha256 ?? hexOf(query.integrity);
      if (this.#visible(digest, context)) {
        this.blobs.get(digest).sites.add(keyOf(context));
        return this.#ok(id, { model: this.#info(digest) });
      }
      const bytes = query.url && this.network.get(query.url);
      if (!bytes) return this.#fail(id, "not_found", "no such model is available to this site");
      const fail = (code, text) => {
        this.loads.delete(id);
        this.#fail(id, code, text);
      };
      this.loads.set(id, { key: keyOf(context), fail });
      const finish = () => {
        if (!this.loads.has(id)) return;
        this.loads.delete(id);
        if (sha256(bytes) !== digest) return this.#fail(id, "integrity_mismatch");
        this.#send({ event: "download.progress", id, loaded: bytes.length, total: bytes.length });
        this.store(bytes, keyOf(context));
        this.#ok(id, { model: this.#info(digest) });
      };
      this.#send({ event: "download.progress", id, loaded: 0, total: bytes.length });
      if (this.holdLoads) this.held.push(finish);
      else setImmediate(finish);
    },
    "models.cancel"(id, { request_id }, context) {
      const load = this.loads.get(request_id);
      const mine = load !== undefined && (context.trusted || load.key === keyOf(context));
      if (mine) load.fail("cancelled", "the download was cancelled");
      this.#ok(id, { cancelled: mine });
    },
    "models.read"(id, { sha256: digest, offset = 0, length = READ_CHUNK }, context) {
      const blob = this.#visible(digest, context);
      if (!blob) return this.#fail(id, "not_found");
      const data = blob.data.subarray(offset, offset + Math.min(length, READ_CHUNK));
      const eof = offset + data.length >= blob.data.length;
      this.#ok(id, { data: data.toString("base64"), offset, length: data.length, size: blob.data.length, eof });
    },
    "models.open"(id, { sha256: digest }, context) {
      const blob = this.#visible(digest, context);
      if (!blob) return this.#fail(id, "not_found");
      this.#ok(id, { url: `http://127.0.0.1:9/m/secret-${digest.slice(0, 8)}`, size: blob.data.length, expires_in: 30 });
    },
    "models.list"(id, _params, context) {
      this.#ok(id, { models: [...this.blobs.keys()].filter((d) => this.#visible(d, context)).map((d) => this.#info(d)) });
    },
    "cos.lookup"(id, { sha256: digest }, context) {
      const blob = this.#visible(digest, context);
      this.#ok(id, blob ? { found: true, size: blob.data.length } : { found: false });
    },
    "cos.write.begin"(id, { sha256: digest, size }, context) {
      const uploadId = `u${this.uploads.size + 1}-${digest.slice(0, 8)}`;
      this.uploads.set(uploadId, { digest, size, key: keyOf(context), parts: [], received: 0 });
      this.#ok(id, { upload_id: uploadId });
    },
    "cos.write.chunk"(id, { upload_id, offset, data }, context) {
      const upload = this.uploads.get(upload_id);
      if (!upload || upload.key !== keyOf(context)) return this.#fail(id, "not_found", "no such upload");
      if (offset !== upload.received) return this.#fail(id, "bad_request", "chunk out of order");
      const bytes = Buffer.from(data, "base64");
      upload.parts.push(bytes);
      upload.received += bytes.length;
      this.#ok(id, { received: upload.received });
    },
    "cos.write.commit"(id, { upload_id }, context) {
      const upload = this.uploads.get(upload_id);
      if (!upload || upload.key !== keyOf(context)) return this.#fail(id, "not_found", "no such upload");
      this.uploads.delete(upload_id);
      const bytes = Buffer.concat(upload.parts);
      if (bytes.length !== upload.size || sha256(bytes) !== upload.digest) {
        return this.#fail(id, "integrity_mismatch", `expected ${upload.digest}, got ${sha256(bytes)}`);
      }
      this.store(bytes, upload.key);
      this.#ok(id, { model: this.#info(upload.digest) });
    },
    "cos.write.abort"(id, { upload_id }) {
      this.#ok(id, { aborted: this.uploads.delete(upload_id) });
    },
    "manage.list"(id) {
      const models = [...this.blobs].map(([digest, blob]) => ({ ...this.#info(digest), sites: [...blob.sites] }));
      this.#ok(id, { models });
    },
  };
}

export function hexOf(integrity) {
  return Buffer.from(String(integrity).replace(/^sha256-/, ""), "base64").toString("hex");
}

export function integrityOf(bytes) {
  return `sha256-${createHash("sha256").update(bytes).digest("base64")}`;
}

export { sha256 };
