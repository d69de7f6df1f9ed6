import assert from "node:assert/strict";
import { test } from "node:test";

import { ERROR_CODES } from "../shared/error-codes.js";
import { DOM_EXCEPTION_NAMES, domExceptionName, errorForPage, hostExited, wireError } from "../shared/errors.js";

// WebIDL §2.8.1, the DOMException names a page can switch on.
const WEBIDL_NAMES = new Set([
  "IndexSizeError", "HierarchyRequestError", "WrongDocumentError", "InvalidCharacterError",
  "NoModificationAllowedError", "NotFoundError", "NotSupportedError", "InvalidStateError",
  "InUseAttributeError", "SyntaxError", "InvalidModificationError", "NamespaceError",
  "SecurityError", "NetworkError", "AbortError", "QuotaExceededError", "TimeoutError",
  "InvalidNodeTypeError", "DataCloneError", "EncodingError", "NotReadableError", "UnknownError",
  "ConstraintError", "DataError", "TransactionInactiveError", "ReadOnlyError", "VersionError",
  "OperationError", "NotAllowedError", "OptOutError",
]);

test("every host error code maps to a WebIDL DOMException name", () => {
  assert.deepEqual(Object.keys(DOM_EXCEPTION_NAMES).sort(), Object.keys(ERROR_CODES).sort());
  for (const [code, name] of Object.entries(DOM_EXCEPTION_NAMES)) {
    assert.ok(WEBIDL_NAMES.has(name), `${code} -> ${name}`);
  }
  assert.equal(domExceptionName("not_found"), "NotFoundError");
  assert.equal(domExceptionName("cancelled"), "AbortError");
  assert.equal(domExceptionName("integrity_mismatch"), "DataError");
});

test("a code this extension does not know yet becomes UnknownError", () => {
  assert.equal(domExceptionName("from_a_newer_host"), "UnknownError");
  assert.equal(domExceptionName("toString"), "UnknownError");
});

test("errorForPage makes any error well-formed and names it", () => {
  assert.deepEqual(errorForPage({ code: "not_found", message: "gone", details: { a: 1 } }), {
    code: "not_found", message: "gone", details: { a: 1 }, name: "NotFoundError",
  });
  assert.deepEqual(errorForPage(undefined), {
    code: "internal", message: "the request failed", details: {}, name: "UnknownError",
  });
  assert.equal(errorForPage({ code: 3, details: null }).code, "internal");
});

test("wireError only makes errors with codes of the table", () => {
  assert.deepEqual(wireError("busy", "later"), { code: "busy", message: "later", details: {} });
  assert.throws(() => wireError("no_such_code", "x"));
});

test("hostExited says what happened and what to do", () => {
  const missing = hostExited("Specified native messaging host not found.");
  assert.equal(missing.code, "internal");
  assert.match(missing.message, /^the webmodels host exited; Specified native messaging host not found; is it installed\? Run `webmodels install`$/);
  assert.match(hostExited("Native host has exited.").message, /^the webmodels host exited; Native host has exited; it is started again/);
  assert.match(hostExited(undefined).message, /^the webmodels host exited; it closed its connection/);
});
