// Page side, part 2 of 4: navigator.crossOriginStorage in the shape of the WICG
// Cross-Origin Storage explainer (https://wicg.github.io/cross-origin-storage/):
//
//   getFileHandle({algorithm: "SHA-256", value: hex}, {create?, origins?})
//   requestFileHandle(hash, options)              (the older name: WebLLM 0.2.83-0.2.85,
//                                                  Transformers.js 4.3)
//   requestFileHandles([hash, ...], options)      (the older plural form: Transformers.js 4.0-4.2)
//
// A look-up (no `create`) resolves only when the file is in the store for this
// site; otherwise it rejects with NotFoundError. `create: true` gives a handle whose
// createWritable() collects the bytes, and whose close() resolves only once the host
// has checked the SHA-256 and stored them (integrity_mismatch -> DataError).
// `origins` is accepted and not sent: the store's privacy policy decides who sees
// a file, whatever a page asks for.
(() => {
  "use strict";

  const I = globalThis[Symbol.for("webmodels.page-internals")];
  if (!I) return; // not a secure context

  const UPLOAD_CHUNK = 8 << 20; // raw bytes per cos.write.chunk (base64 stays far below 64 MiB frames)
  const CHUNKS_IN_FLIGHT = 3; // per upload, through native messaging (the host waits for each one's turn)
  const UPLOADS_AT_ONCE = 4; // the host keeps at most 4 uploads open per partition
  const HEX = /^[0-9a-f]{64}$/;
  const tag = (value) => Object.prototype.toString.call(value);

  function parseHash(hash) {
    if (hash === null || typeof hash !== "object") {
      throw new TypeError('a hash is {algorithm: "SHA-256", value: "<64 hex digits>"}');
    }
    // Both members are required (WebIDL: a missing required member is a TypeError).
    if (hash.algorithm === undefined || hash.value === undefined) {
      throw new TypeError('a hash needs both "algorithm" and "value"');
    }
    const algorithm = String(hash.algorithm ?? "");
    if (algorithm.toUpperCase() !== "SHA-256") {
      throw new DOMException(`hash algorithm "${algorithm}" is not supported; use SHA-256`, "NotSupportedError");
    }
    const value = String(hash.value ?? "").toLowerCase();
    if (!HEX.test(value)) throw new TypeError("hash.value must be 64 hexadecimal digits");
    return value;
  }

  function notFound(sha256) {
    return I.toDOMException({
      code: "not_found",
      message: `no file with SHA-256 ${sha256} is available to this site`,
      name: "NotFoundError",
    });
  }

  async function lookup(sha256) {
    const { found, size } = await I.request("cos.lookup", { sha256 }).promise;
    if (!found) throw notFound(sha256);
    return size;
  }

  // --- uploads: at most UPLOADS_AT_ONCE open, the others wait their turn ----------

  let active = 0;
  const waiting = [];
  const acquire = () => (active < UPLOADS_AT_ONCE ? (active++, Promise.resolve()) : new Promise((go) => waiting.push(go)));
  const release = () => (waiting.length > 0 ? waiting.shift()() : active--);

  /** The model the host stored, through the bridge (loopback speed); null when the
   *  bridge could not carry the bytes (then native messaging does). */
  async function fastUpload(sha256, blob) {
    let verdict;
    try {
      verdict = await I.fastWrite({ sha256, size: blob.size }, blob);
    } catch {
      return null;
    }
    if (verdict.failure) throw I.toDOMException(verdict.failure);
    return verdict.result.model;
  }

  async function upload(sha256, blob) {
    await acquire();
    let uploadId = null;
    try {
      const stored = await fastUpload(sha256, blob);
      if (stored !== null) return stored;
      ({ upload_id: uploadId } = await I.request("cos.write.begin", { sha256, size: blob.size }).promise);
      // In order, CHUNKS_IN_FLIGHT at a time: the next chunk is read and encoded while
      // the host takes the ones before it (it writes each at its offset, in turn).
      const inFlight = [];
      for (let offset = 0; offset < blob.size; offset += UPLOAD_CHUNK) {
        const bytes = new Uint8Array(await blob.slice(offset, offset + UPLOAD_CHUNK).arrayBuffer());
        const sent = I.request("cos.write.chunk", { upload_id: uploadId, offset, data: I.toBase64(bytes) }).promise;
        sent.catch(() => {}); // awaited below; a failure aborts the upload (finally)
        inFlight.push(sent);
        if (inFlight.length >= CHUNKS_IN_FLIGHT) await inFlight.shift();
      }
      for (const sent of inFlight) await sent;
      const committing = uploadId;
      uploadId = null; // a failed commit leaves nothing open on the host
      return (await I.request("cos.write.commit", { upload_id: committing }).promise).model;
    } finally {
      if (uploadId !== null) I.request("cos.write.abort", { upload_id: uploadId }).promise.catch(() => {});
      release();
    }
  }

  /** Blob, BufferSource or string data as a Blob (Blobs by reference, the others
   *  copied, so the caller may reuse its buffer); null for anything else. */
  function dataBlob(data) {
    if (tag(data) === "[object Blob]" || tag(data) === "[object File]") return data;
    if (ArrayBuffer.isView(data) || tag(data) === "[object ArrayBuffer]") return new Blob([data]);
    if (typeof data === "string") return new Blob([data]);
    return null;
  }

  /** One write() argument (data, or FileSystemWritableFileStream's {type, data,
   *  position}) as a Blob appended at byte `written`. */
  function toBlob(chunk, written) {
    const direct = dataBlob(chunk);
    if (direct !== null) return direct;
    if (chunk === null || typeof chunk !== "object" || typeof chunk.type !== "string") {
      throw new TypeError("write() takes a Blob, a BufferSource, a string or {type: 'write', data}");
    }
    const appends = chunk.position === undefined || chunk.position === null || chunk.position === written;
    if (chunk.type !== "write" || !appends) {
      throw new DOMException(`"${chunk.type}" elsewhere than at the end: only appending writes are supported`, "NotSupportedError");
    }
    const blob = dataBlob(chunk.data);
    if (blob === null) throw new TypeError("{type: 'write'} needs data: a Blob, a BufferSource or a string");
    return blob;
  }

  /** Like FileSystemWritableFileStream: a WritableStream with write() and close(). */
  class CrossOriginStorageWritableFileStream extends WritableStream {
    constructor(sha256) {
      const parts = [];
      let written = 0;
      super({
        write(chunk) {
          const blob = toBlob(chunk, written);
          parts.push(blob);
          written += blob.size;
        },
        async close() {
          const whole = new Blob(parts);
          parts.length = 0;
          await upload(sha256, whole);
        },
        abort() {
          parts.length = 0;
        },
      });
    }

    async write(data) {
      const writer = this.getWriter();
      try {
        await writer.write(data);
      } finally {
        writer.releaseLock();
      }
    }
  }

  /** Like FileSystemFileHandle, named by the file's SHA-256. */
  class CrossOriginStorageFileHandle {
    #sha256;
    #writable;

    constructor(sha256, writable) {
      this.#sha256 = sha256;
      this.#writable = writable;
    }

    get kind() {
      return "file";
    }

    get name() {
      return this.#sha256;
    }

    async getFile() {
      const size = await lookup(this.#sha256);
      return new File(await I.blobParts(this.#sha256, size), this.#sha256); // part by part
    }

    async createWritable() {
      if (!this.#writable) {
        throw new DOMException("this handle was requested without {create: true}", "NotAllowedError");
      }
      return new CrossOriginStorageWritableFileStream(this.#sha256);
    }

    async isSameEntry(other) {
      return other instanceof CrossOriginStorageFileHandle && other.name === this.name;
    }
  }

  class CrossOriginStorageManager {
    // The spec's current name; libraries feature-detect it (WebLLM 0.2.86 checks
    // `typeof navigator.crossOriginStorage.getFileHandle === "function"` and otherwise
    // falls back to its per-site cache, downloading the weights again on every site).
    async getFileHandle(hash, options = {}) {
      const sha256 = parseHash(hash);
      const create = options?.create === true;
      if (!create) await lookup(sha256);
      return new CrossOriginStorageFileHandle(sha256, create);
    }

    async requestFileHandle(hash, options = {}) {
      return this.getFileHandle(hash, options);
    }

    async requestFileHandles(hashes, options = {}) {
      if (hashes === null || typeof hashes?.[Symbol.iterator] !== "function") {
        throw new TypeError("requestFileHandles takes a list of hashes");
      }
      return Promise.all(Array.from(hashes, (hash) => this.getFileHandle(hash, options)));
    }
  }

  // A browser that implements Cross-Origin Storage itself keeps its own.
  if (!("crossOriginStorage" in navigator)) {
    const manager = new CrossOriginStorageManager();
    Object.defineProperty(navigator, "crossOriginStorage", { get: () => manager, configurable: true, enumerable: true });
  }
})();
