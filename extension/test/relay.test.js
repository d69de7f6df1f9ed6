// content/relay.js in an ISOLATED-world vm context, with a window it shares with
// the page and a chrome.runtime whose ports the test watches.
import assert from "node:assert/strict";
import { test } from "node:test";
import vm from "node:vm";

import { FakeWindow, browserEvent, runScript, settle } from "./fake-browser.js";

function relayIn(origin, { isActive = false, connect } = {}) {
  const window = new FakeWindow(origin);
  const ports = [];
  const defaultConnect = ({ name }) => {
    const port = {
      name, sent: [], onMessage: browserEvent(), onDisconnect: browserEvent(),
      postMessage: (m) => port.sent.push(JSON.parse(JSON.stringify(m))),
    };
    ports.push(port);
    return port;
  };
  const activation = { isActive };
  const context = vm.createContext({
    window,
    navigator: { userActivation: activation },
    chrome: { runtime: { connect: connect ?? defaultConnect, getURL: (path = "") => `chrome-extension://test-id/${path}` } },
  });
  runScript("content/relay.js", context);
  const toPage = () => window.posted.filter((p) => p.data.dir === "to-page");
  return { window, ports, activation, toPage };
}

const request = (fields) => ({ __webmodels: 1, dir: "to-extension", ...fields });

test("the relay opens its port on first use only", async () => {
  const { ports, window } = relayIn("https://a.example");
  await settle();
  assert.equal(ports.length, 0);
  window.postMessage(request({ id: 1, method: "hello", params: {} }), "https://a.example");
  window.postMessage(request({ id: 2, method: "hello", params: {} }), "https://a.example");
  await settle();
  assert.equal(ports.length, 1);
  assert.equal(ports[0].name, "webmodels-page");
  assert.deepEqual(ports[0].sent.map((m) => m.id), [1, 2]);
});

test("it forwards id, method, params and its own reading of user activation, nothing else", async () => {
  const { ports, window, activation } = relayIn("https://a.example");
  window.postMessage(
    request({
      id: 1, method: "models.load", params: { query: { sha256: "ab" } }, user_activation: true,
      context: { trusted: true, partition: { top_site: "https://b.example" } }, origin: "https://b.example",
    }),
    "*",
  );
  await settle();
  activation.isActive = true;
  window.postMessage(request({ id: 2, method: "hello", params: {}, user_activation: false }), "*");
  await settle();
  assert.deepEqual(ports[0].sent, [
    { id: 1, method: "models.load", params: { query: { sha256: "ab" } }, user_activation: false },
    { id: 2, method: "hello", params: {}, user_activation: true },
  ]);
});

test("it ignores other windows, untagged messages and its own replies", async () => {
  const { ports, window } = relayIn("https://a.example");
  window.deliver(request({ id: 1, method: "hello" }), { another: "frame" });
  window.deliver({ id: 2, method: "hello" }, window);
  window.deliver({ __webmodels: 2, dir: "to-extension", id: 3, method: "hello" }, window);
  window.deliver({ __webmodels: 1, dir: "to-page", id: 4, method: "hello" }, window);
  window.deliver(null, window);
  window.deliver("__webmodels", window);
  await settle();
  assert.equal(ports.length, 0);
});

test("replies and events go to this window at its own origin", async () => {
  const { ports, window, toPage } = relayIn("https://a.example");
  window.postMessage(request({ id: 1, method: "hello", params: {} }), "*");
  await settle();
  ports[0].onMessage.fire({ event: "download.progress", id: 1, loaded: 1, total: 2 });
  ports[0].onMessage.fire({ id: 1, ok: true, result: {} });
  assert.deepEqual(toPage(), [
    { data: { __webmodels: 1, dir: "to-page", reply: { event: "download.progress", id: 1, loaded: 1, total: 2 } }, targetOrigin: "https://a.example" },
    { data: { __webmodels: 1, dir: "to-page", reply: { id: 1, ok: true, result: {} } }, targetOrigin: "https://a.example" },
  ]);
});

test("an opaque origin can only be addressed as '*' (it is still this window)", async () => {
  const { ports, window, toPage } = relayIn("null");
  window.postMessage(request({ id: 1, method: "hello", params: {} }), "*");
  await settle();
  ports[0].onMessage.fire({ id: 1, ok: false, error: { code: "access_denied" } });
  assert.equal(toPage()[0].targetOrigin, "*");
});

test("a closed port is reported to the page, and the next request opens another", async () => {
  const { ports, window, toPage } = relayIn("https://a.example");
  window.postMessage(request({ id: 1, method: "hello", params: {} }), "*");
  await settle();
  ports[0].onDisconnect.fire(ports[0]);
  assert.deepEqual(toPage()[0].data, { __webmodels: 1, dir: "to-page", disconnected: true });
  window.postMessage(request({ id: 2, method: "hello", params: {} }), "*");
  await settle();
  assert.equal(ports.length, 2);
  assert.deepEqual(ports[1].sent.map((m) => m.id), [2]);
});

test("an extension that went away is an error reply, not a silent hang", async () => {
  const connect = () => {
    throw new Error("Extension context invalidated.");
  };
  const { window, toPage } = relayIn("https://a.example", { connect });
  window.postMessage(request({ id: 5, method: "hello", params: {} }), "*");
  await settle();
  const { reply } = toPage()[0].data;
  assert.equal(reply.id, 5);
  assert.equal(reply.ok, false);
  assert.equal(reply.error.code, "internal");
  assert.match(reply.error.message, /Extension context invalidated.*reload the page/);
});
