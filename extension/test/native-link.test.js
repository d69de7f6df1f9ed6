import assert from "node:assert/strict";
import { test } from "node:test";

import { NATIVE_HOST, NativeLink } from "../background/native-link.js";
import { browserEvent } from "./fake-browser.js";

/** chrome.runtime with a connectNative whose ports the test drives by hand. */
function fakeRuntime() {
  const runtime = {
    lastError: undefined,
    ports: [],
    connectNative(name) {
      assert.equal(name, NATIVE_HOST);
      const port = { sent: [], onMessage: browserEvent(), onDisconnect: browserEvent(), postMessage: (m) => port.sent.push(m) };
      runtime.ports.push(port);
      return port;
    },
  };
  return runtime;
}

function recorder() {
  const replies = [];
  const events = [];
  return { replies, events, handlers: { onReply: (r) => replies.push(r), onEvent: (e) => events.push(e) } };
}

test("the host is started on first use, and one port serves every request", () => {
  const runtime = fakeRuntime();
  const link = new NativeLink(runtime);
  assert.equal(runtime.ports.length, 0);
  const a = recorder();
  const b = recorder();
  link.send({ id: "1.1", method: "hello", params: {}, context: {} }, a.handlers);
  link.send({ id: "1.2", method: "models.load", params: {}, context: {} }, b.handlers);
  assert.equal(runtime.ports.length, 1);
  const [port] = runtime.ports;
  assert.deepEqual(port.sent.map((m) => m.id), ["1.1", "1.2"]);

  port.onMessage.fire({ event: "download.progress", id: "1.2", loaded: 1, total: 2 });
  port.onMessage.fire({ id: "1.2", ok: true, result: { model: {} } });
  port.onMessage.fire({ id: "1.1", ok: true, result: { protocol_version: 1 } });
  port.onMessage.fire({ id: "1.1", ok: true, result: {} }); // a second reply is not delivered

  assert.deepEqual(a.replies, [{ id: "1.1", ok: true, result: { protocol_version: 1 } }]);
  assert.deepEqual(b.events, [{ event: "download.progress", id: "1.2", loaded: 1, total: 2 }]);
  assert.equal(b.replies.length, 1);
  assert.equal(link.inFlight, 0);
});

test("when the host exits, requests in flight fail with internal and the next one starts a new host", () => {
  const runtime = fakeRuntime();
  const link = new NativeLink(runtime);
  const first = recorder();
  link.send({ id: "1.1", method: "models.load", params: {}, context: {} }, first.handlers);
  runtime.lastError = { message: "Native host has exited." };
  runtime.ports[0].onDisconnect.fire(runtime.ports[0]);
  runtime.lastError = undefined;

  assert.equal(first.replies.length, 1);
  const [reply] = first.replies;
  assert.equal(reply.id, "1.1");
  assert.equal(reply.ok, false);
  assert.equal(reply.error.code, "internal");
  assert.match(reply.error.message, /^the webmodels host exited; Native host has exited;/);
  assert.equal(link.connected, false);

  const second = recorder();
  link.send({ id: "1.2", method: "hello", params: {}, context: {} }, second.handlers);
  assert.equal(runtime.ports.length, 2);
  runtime.ports[1].onMessage.fire({ id: "1.2", ok: true, result: {} });
  assert.equal(second.replies[0].ok, true);
});

test("a host that cannot start answers with the browser's reason", () => {
  const runtime = fakeRuntime();
  runtime.connectNative = () => {
    throw new Error("Access to the specified native messaging host is forbidden.");
  };
  const link = new NativeLink(runtime);
  const r = recorder();
  link.send({ id: "1.1", method: "hello" }, r.handlers);
  assert.match(r.replies[0].error.message, /forbidden; is it installed\? Run `webmodels install`$/);
});

test("a port that dies while posting fails that request only", () => {
  const runtime = fakeRuntime();
  const link = new NativeLink(runtime);
  const r = recorder();
  link.send({ id: "1.1", method: "hello" }, r.handlers);
  runtime.ports[0].postMessage = () => {
    throw new Error("Attempting to use a disconnected port object");
  };
  const s = recorder();
  link.send({ id: "1.2", method: "hello" }, s.handlers);
  assert.equal(s.replies[0].error.code, "internal");
  assert.equal(r.replies.length, 0);
  assert.equal(link.inFlight, 1);
});

test("replies for no request in flight are logged, not delivered", () => {
  const warnings = [];
  const runtime = fakeRuntime();
  const link = new NativeLink(runtime, { log: { warn: (...args) => warnings.push(args) } });
  link.send({ id: "1.1", method: "hello" }, recorder().handlers);
  runtime.ports[0].onMessage.fire({ id: null, ok: false, error: { code: "bad_frame" } });
  runtime.ports[0].onMessage.fire("not an object");
  assert.equal(warnings.length, 1);
  assert.equal(link.inFlight, 1);
});
