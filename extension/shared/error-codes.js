// The host's error codes (host/webmodels/errors.py ERROR_CODES), mirrored here.
// APPEND-ONLY, in the host's order: a code is never renamed, removed or given
// another meaning. tests/test_error_codes_mirror.py keeps the two tables equal.

/** code -> one-line meaning */
export const ERROR_CODES = Object.freeze({
  "bad_frame": "A frame could not be decoded (length prefix, UTF-8 or JSON).",
  "bad_request": "The request is not of the documented shape.",
  "unknown_method": "No such method.",
  "not_found": "No such model, blob or upload (or not visible to this partition).",
  "access_denied": "The caller may not do this (management needs a trusted caller).",
  "integrity_mismatch": "The bytes do not match the expected SHA-256.",
  "download_failed": "A download failed after its retries.",
  "network_unavailable": "The network cannot be reached and the model is not stored.",
  "disk_full": "Not enough free space to store the model.",
  "quota_exceeded": "A storage quota would be exceeded.",
  "user_activation_required": "Starting this needs a user gesture on the page.",
  "model_invalid": "The file is not a valid model of the expected format.",
  "model_unsafe": "The model refers to files or features the host refuses to load.",
  "session_not_found": "No such session in this partition.",
  "session_crashed": "The runtime worker crashed while handling this session.",
  "inference_failed": "The runtime rejected the inputs or failed to run.",
  "too_large": "A frame or value exceeds its size limit.",
  "cancelled": "The request was cancelled.",
  "busy": "Over a concurrency, memory or time limit; try again later.",
  "internal": "An unexpected error in the host (see its log).",
  // -- added after v1 (append below this line only) --
  "model_pinned": "The model is pinned; unpin it before deleting it.",
  "read_only": "The model is pre-installed and managed outside the store.",
  "representation_unavailable": "No converter makes the asked form of this model.",
});
