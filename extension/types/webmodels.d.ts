// Types of the page API that the webmodels extension adds to secure-context
// windows: navigator.crossOriginStorage (WICG Cross-Origin Storage) and
// window.webmodels. Both are absent without the extension (or on http: pages):
// feature-test before use.
//
//   /// <reference path="webmodels.d.ts" />
//   if (navigator.crossOriginStorage) { ... }
//   if (window.webmodels) { ... }

export {};

declare global {
  // --- Cross-Origin Storage (https://wicg.github.io/cross-origin-storage/) ----------

  interface CrossOriginStorageRequestFileHandleHash {
    /** Only "SHA-256" (case-insensitive); others reject with NotSupportedError. */
    algorithm: string;
    /** 64 hexadecimal digits (either case). */
    value: string;
  }

  interface CrossOriginStorageRequestFileHandleOptions {
    /** Ask for a handle to write the file (createWritable()); default false: a
     *  look-up that rejects with NotFoundError when the file is not there. */
    create?: boolean;
    /** Accepted and not used: the store's privacy policy decides who sees a file. */
    origins?: string | string[];
  }

  /** What write() takes: data, or FileSystemWritableFileStream's write params
   *  (appending only: another `position`, "seek" and "truncate" reject with
   *  NotSupportedError). */
  type CrossOriginStorageWriteData =
    | Blob
    | BufferSource
    | string
    | { type: "write"; data: Blob | BufferSource | string; position?: number | null };

  interface CrossOriginStorageWritableFileStream extends WritableStream<CrossOriginStorageWriteData> {
    write(data: CrossOriginStorageWriteData): Promise<void>;
    /** Resolves once the host has checked the SHA-256 and stored the bytes; rejects
     *  with DataError (webmodelsCode "integrity_mismatch") when they do not match. */
    close(): Promise<void>;
  }

  /** Like FileSystemFileHandle; `name` is the SHA-256. */
  interface CrossOriginStorageFileHandle {
    readonly kind: "file";
    readonly name: string;
    getFile(): Promise<File>;
    /** Only on handles requested with {create: true}; otherwise NotAllowedError. */
    createWritable(): Promise<CrossOriginStorageWritableFileStream>;
    isSameEntry(other: unknown): Promise<boolean>;
  }

  interface CrossOriginStorageManager {
    /** The spec's current name (WebLLM 0.2.86 feature-detects it). Without `create`,
     *  rejects with NotFoundError unless the file is available to this site.
     *  `origins` is accepted and ignored: the store's privacy policy decides. */
    getFileHandle(
      hash: CrossOriginStorageRequestFileHandleHash,
      options?: CrossOriginStorageRequestFileHandleOptions,
    ): Promise<CrossOriginStorageFileHandle>;
    /** The older name of getFileHandle (WebLLM 0.2.83-0.2.85, Transformers.js 4.3). */
    requestFileHandle(
      hash: CrossOriginStorageRequestFileHandleHash,
      options?: CrossOriginStorageRequestFileHandleOptions,
    ): Promise<CrossOriginStorageFileHandle>;
    /** The explainer's older plural form. */
    requestFileHandles(
      hashes: Iterable<CrossOriginStorageRequestFileHandleHash>,
      options?: CrossOriginStorageRequestFileHandleOptions,
    ): Promise<CrossOriginStorageFileHandle[]>;
  }

  interface Navigator {
    readonly crossOriginStorage?: CrossOriginStorageManager;
  }

  /** In a worker its page connected (webmodels.connectWorker) and that imported
   *  webmodels.workerScript. */
  interface WorkerNavigator {
    readonly crossOriginStorage?: CrossOriginStorageManager;
  }

  // --- window.webmodels ---------------------------------------------------------------

  /** The host's error code (PROTOCOL.md, "Error codes"); new codes may be added. */
  type WebModelsErrorCode =
    | "bad_frame" | "bad_request" | "unknown_method" | "not_found" | "access_denied"
    | "integrity_mismatch" | "download_failed" | "network_unavailable" | "disk_full"
    | "quota_exceeded" | "user_activation_required" | "model_invalid" | "model_unsafe"
    | "session_not_found" | "session_crashed" | "inference_failed" | "too_large"
    | "cancelled" | "busy" | "internal" | "model_pinned" | "read_only"
    | (string & {});

  /** Every rejection of the API is a DOMException carrying the host's code: `name`
   *  is the code mapped to a DOM name (not_found -> NotFoundError, cancelled ->
   *  AbortError, integrity_mismatch -> DataError, …) and the message ends with
   *  "(webmodels: <code>)". Argument errors are TypeErrors. */
  interface WebModelsError extends DOMException {
    readonly webmodelsCode: WebModelsErrorCode;
    readonly details: Record<string, unknown>;
  }

  type WebModelsQuery =
    | { sha256: string }
    | { url: string; integrity: string; size?: number }
    | { urls: string[]; integrity: string; size?: number }
    /** By name and npm-style range ("^1.2", "~1.2.3", ">=1.3 <2", "1.x"; default "*"). */
    | { name: string; version?: string }
    /** An inline descriptor: a name no catalog knows, with its exact version. */
    | { name: string; version: string; url: string; integrity: string; size?: number };

  type WebModelsAvailability = "available" | "downloading" | "downloadable" | "unavailable";

  interface WebModelsTensorInfo {
    name: string;
    type: string;
    dims: Array<number | string | null> | null;
  }

  /** ModelInfo (PROTOCOL.md). */
  interface WebModelsModelInfo {
    sha256: string;
    size: number;
    format: string;
    name: string | null;
    version: string | null;
    source: "downloaded" | "preinstalled" | "imported";
    inputs?: WebModelsTensorInfo[];
    outputs?: WebModelsTensorInfo[];
    opsets?: Record<string, number>;
    ir_version?: number;
    producer?: string;
    substituted: boolean;
  }

  /** The target passed to `monitor`: "downloadprogress" events with `loaded` and
   *  `total` in bytes (total is 0 and lengthComputable false when unknown). */
  interface WebModelsMonitor extends EventTarget {
    addEventListener(
      type: "downloadprogress",
      listener: (event: ProgressEvent) => void,
      options?: boolean | AddEventListenerOptions,
    ): void;
    addEventListener(
      type: string,
      listener: EventListenerOrEventListenerObject | null,
      options?: boolean | AddEventListenerOptions,
    ): void;
  }

  interface WebModelsLoadOptions {
    /** Called at once with the target of this load's progress events. */
    monitor?: (monitor: WebModelsMonitor) => void;
    /** Aborting cancels the download (unless other requests want it) and rejects
     *  with the signal's reason (an AbortError by default). */
    signal?: AbortSignal;
    /** A background download that goes on when every requester has cancelled. */
    prefetch?: boolean;
    /** For name queries: "none" (default) gives the newest version in range;
     *  "compatible" the newest in range already at hand; "equivalent" also a
     *  catalog-declared equivalent at hand with a matching input/output signature.
     *  `info.substituted` says when what was given is not the newest in range. */
    substitute?: "none" | "compatible" | "equivalent";
    /** The form the page's runtime needs (docs/representations.md). Named fields win;
     *  `for` picks the rest from what this browser reports (the page API reads the
     *  WebGPU adapter's `shader-f16` and WebNN's opSupportLimits() float types). */
    representation?: WebModelsRepresentation;
    /** At most 4 forms the page will ask for later: the host makes them in the
     *  background once it holds the model; the load does not wait for them. */
    derive?: WebModelsRepresentation[];
  }

  interface WebModelsRepresentation {
    dtype?: "fp32" | "fp16" | "int8";
    format?: "onnx" | "ort";
    /** The form as model.onnx + model.onnx_data: load() then gives a model of files. */
    external_data?: boolean;
    opset?: number;
    for?: "webgpu" | "webnn" | "wasm" | "host";
  }

  interface WebModelsModel {
    readonly info: Readonly<WebModelsModelInfo>;
    arrayBuffer(): Promise<ArrayBuffer>;
    blob(): Promise<Blob>;
    /** The bytes in order, in chunks of at most 720 KiB. */
    stream(): ReadableStream<Uint8Array>;
    /** A session of this model in the host's native ONNX Runtime, from its compile
     *  cache when the model was compiled before. */
    createSession(options?: WebModelsSessionOptions): Promise<WebModelsSession>;
  }

  // --- sessions (the tensor shape of ONNX Runtime Web) ---------------------------------

  /** Element types by their ONNX Runtime Web names, with the array `data` holds. */
  interface WebModelsTensorDataMap {
    float32: Float32Array;
    float64: Float64Array;
    /** IEEE half floats as bit patterns (a Float16Array is accepted as input). */
    float16: Uint16Array;
    int8: Int8Array;
    uint8: Uint8Array;
    int16: Int16Array;
    uint16: Uint16Array;
    int32: Int32Array;
    uint32: Uint32Array;
    int64: BigInt64Array;
    uint64: BigUint64Array;
    /** One byte per element: 0 or 1. */
    bool: Uint8Array;
    string: string[];
  }

  type WebModelsTensorType = keyof WebModelsTensorDataMap;

  /** What run() returns per output: the shape of ORT Web's `Tensor` (pass it on
   *  with `new ort.Tensor(t.type, t.data, t.dims)`). */
  interface WebModelsTensor<T extends WebModelsTensorType = WebModelsTensorType> {
    type: T;
    dims: number[];
    data: WebModelsTensorDataMap[T];
  }

  /** What run() takes per input: an `ort.Tensor` (on the CPU, or with getData() for
   *  GPU-held ones) or any object of that shape. `data` may also be a plain array,
   *  converted as the ort.Tensor constructor does. */
  interface WebModelsTensorInput<T extends WebModelsTensorType = WebModelsTensorType> {
    readonly type: T;
    readonly dims: readonly number[];
    readonly data: WebModelsTensorDataMap[T] | readonly (number | bigint | boolean | string)[];
    readonly location?: string;
    getData?(): Promise<WebModelsTensorDataMap[T]>;
  }

  /** Like ORT Web's InferenceSession.ValueMetadata; `shape` entries are sizes,
   *  symbolic names or null, and the shape is [] when the rank is unknown. */
  interface WebModelsValueMetadata {
    readonly name: string;
    readonly isTensor: true;
    readonly type: WebModelsTensorType | (string & {});
    readonly shape: ReadonlyArray<number | string | null>;
  }

  interface WebModelsSessionOptions {
    /** Preference order, e.g. ["cuda", "cpu"] or ORT names ("CUDAExecutionProvider");
     *  the host uses the first one that really works. Default: the best available. */
    executionProviders?: ReadonlyArray<string | { name: string }>;
    graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  }

  interface WebModelsSession {
    readonly inputNames: readonly string[];
    readonly outputNames: readonly string[];
    readonly inputMetadata: readonly WebModelsValueMetadata[];
    readonly outputMetadata: readonly WebModelsValueMetadata[];
    /** The execution provider the host runs the session on, e.g. "CPUExecutionProvider". */
    readonly provider: string;
    /** True when the host loaded an already-optimized graph from its compile cache. */
    readonly compiledCacheHit: boolean;
    /** Rejects with TypeError for malformed feeds (nothing is sent), InvalidStateError
     *  (session_not_found) after release() or when the host dropped the session,
     *  OperationError (inference_failed, session_crashed, busy), or
     *  QuotaExceededError (too_large: requests up to 64 MiB, replies up to 1 MiB). */
    /** `fetches` names the outputs wanted (default: all), as in ORT Web: an array
     *  of names or an object keyed by them. */
    run(
      feeds: Record<string, WebModelsTensorInput>,
      fetches?: readonly string[] | Record<string, unknown>,
    ): Promise<Record<string, WebModelsTensor>>;
    /** Frees the session in the host (also done when the object is collected). */
    release(): Promise<void>;
  }

  /** A Transformers.js custom cache: `env.useCustomCache = true;
   *  env.customCache = webmodels.cache`. Keys are URLs (or Requests). */
  interface WebModelsCache {
    /** The stored response for `request`, or undefined (never stored by this site). */
    match(request: string | Request): Promise<Response | undefined>;
    /** Stores the body in the shared store (verified by the host). */
    put(request: string | Request, response: Response): Promise<void>;
    /** Forgets the URL for this site (the bytes stay while anything holds them). */
    delete(request: string | Request): Promise<boolean>;
  }

  interface WebModels {
    availability(query: WebModelsQuery): Promise<WebModelsAvailability>;
    load(query: WebModelsQuery, options?: WebModelsLoadOptions): Promise<WebModelsModel>;
    /** Every model this site (this partition) can see. */
    list(): Promise<WebModelsModelInfo[]>;
    readonly cache: WebModelsCache;
    /** Gives `worker` the API (page/worker-client.js must be imported in it). */
    connectWorker(worker: { postMessage(message: unknown, transfer: Transferable[]): void }): void;
    /** The URL of the worker client script: a blob: URL of the page's own origin, one
     *  per page (never the extension's URL, which would name the extension). */
    readonly workerScript: string | null;
  }

  interface Window {
    readonly webmodels?: WebModels;
  }

  var webmodels: WebModels | undefined;
}
