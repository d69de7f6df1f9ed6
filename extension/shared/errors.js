// Error payloads on the extension's side of the wire, and the DOMException name a
// page sees for each host error code. Pure: no chrome.* here.

import { ERROR_CODES } from "./error-codes.js";

// Host code -> DOMException name (WebIDL §2.8.1 names), chosen so a page can switch
// on `error.name` as it does for fetch, IndexedDB or File System Access errors; the
// exact host code stays on `error.webmodelsCode`. A code the table does not know
// yet (a newer host) becomes "UnknownError".
export const DOM_EXCEPTION_NAMES = Object.freeze({
  bad_frame: "SyntaxError",
  bad_request: "SyntaxError",
  unknown_method: "NotSupportedError",
  not_found: "NotFoundError",
  access_denied: "NotAllowedError",
  integrity_mismatch: "DataError",
  download_failed: "NetworkError",
  network_unavailable: "NetworkError",
  disk_full: "QuotaExceededError",
  quota_exceeded: "QuotaExceededError",
  user_activation_required: "NotAllowedError",
  model_invalid: "DataError",
  model_unsafe: "SecurityError",
  session_not_found: "InvalidStateError",
  session_crashed: "OperationError",
  inference_failed: "OperationError",
  too_large: "QuotaExceededError",
  cancelled: "AbortError",
  busy: "OperationError",
  internal: "UnknownError",
  model_pinned: "NoModificationAllowedError",
  read_only: "NoModificationAllowedError",
  representation_unavailable: "NotSupportedError",
});

export function domExceptionName(code) {
  return Object.hasOwn(DOM_EXCEPTION_NAMES, code) ? DOM_EXCEPTION_NAMES[code] : "UnknownError";
}

/** An error object in the protocol's shape: {code, message, details}. */
export function wireError(code, message, details = {}) {
  if (!Object.hasOwn(ERROR_CODES, code)) throw new Error(`unknown error code ${code}`);
  return { code, message, details };
}

/** A failure envelope for request `id`. */
export function failure(id, code, message, details = {}) {
  return { id, ok: false, error: wireError(code, message, details) };
}

/** What a page receives: the host's error (whatever it sent, made well-formed) plus
 *  the DOMException `name` the page shim throws. */
export function errorForPage(error) {
  const code = typeof error?.code === "string" ? error.code : "internal";
  const message = typeof error?.message === "string" ? error.message : "the request failed";
  const details = error?.details !== null && typeof error?.details === "object" ? error.details : {};
  return { code, message, details, name: domExceptionName(code) };
}

/** The error of every request that was in flight when the native host went away
 *  (`reason`: what the browser said, e.g. chrome.runtime.lastError.message). */
export function hostExited(reason) {
  const why = reason ? String(reason).replace(/\.$/, "") : "it closed its connection";
  const hint = /not found|forbidden/i.test(why)
    ? "is it installed? Run `webmodels install`"
    : "it is started again for the next request; its log has the details";
  return wireError("internal", `the webmodels host exited; ${why}; ${hint}`);
}
