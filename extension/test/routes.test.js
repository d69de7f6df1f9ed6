import assert from "node:assert/strict";
import { test } from "node:test";

import { RouteTable, idSource, isRequestId, parseRequest } from "../shared/routes.js";

test("parseRequest keeps id, method and params and drops everything else", () => {
  const message = {
    id: 4, method: "models.load", params: { query: { sha256: "ab" } },
    context: { trusted: true, partition: { top_site: "https://evil.example" } }, origin: "https://evil.example",
  };
  assert.deepEqual(parseRequest(message), { ok: true, request: { id: 4, method: "models.load", params: { query: { sha256: "ab" } } } });
  assert.deepEqual(parseRequest({ id: "x", method: "hello" }).request.params, {});
});

test("parseRequest refuses malformed requests with bad_request", () => {
  assert.equal(parseRequest({ method: "hello" }).id, null);
  assert.equal(parseRequest(null).ok, false);
  for (const method of ["Models.load", "models.", "a.b c", 7, "x".repeat(70) + ".y"]) {
    const result = parseRequest({ id: 1, method });
    assert.equal(result.ok, false, String(method));
    assert.equal(result.error.code, "bad_request");
    assert.equal(result.id, 1);
  }
  assert.equal(parseRequest({ id: 1, method: "models.list", params: [] }).ok, false);
  assert.equal(parseRequest({ id: 1, method: "models.list", params: "x" }).ok, false);
});

test("request ids are integers or short strings", () => {
  for (const good of [0, 7, "a", "x".repeat(128)]) assert.ok(isRequestId(good));
  for (const bad of [1.5, -0.5, "", "x".repeat(129), null, {}, NaN, 2 ** 60]) assert.equal(isRequestId(bad), false);
});

test("host ids never repeat, not even across worker epochs", () => {
  const first = idSource(1);
  const second = idSource(2);
  const ids = [first(), first(), second(), second()];
  assert.deepEqual(ids, ["1.1", "1.2", "2.1", "2.2"]);
});

test("routes map host ids to the caller's ids, one in flight per caller id", () => {
  const routes = new RouteTable();
  const frameA = {};
  const frameB = {};
  assert.ok(routes.add("1.1", { channel: frameA, callerId: 1, method: "models.load" }));
  assert.ok(routes.add("1.2", { channel: frameB, callerId: 1, method: "models.read" }));
  assert.equal(routes.add("1.3", { channel: frameA, callerId: 1, method: "hello" }), false);
  assert.equal(routes.hostIdFor(frameA, 1), "1.1");
  assert.equal(routes.hostIdFor(frameB, 1), "1.2");
  assert.deepEqual(routes.take("1.1"), { channel: frameA, callerId: 1, method: "models.load" });
  assert.equal(routes.take("1.1"), undefined);
  assert.ok(routes.add("1.4", { channel: frameA, callerId: 1, method: "hello" }));
  assert.deepEqual(routes.dropChannel(frameA).map(([id]) => id), ["1.4"]);
  assert.deepEqual(routes.dropChannel(frameA), []);
  assert.equal(routes.size, 1);
});
