// Nothing a page can read names the extension (PRIVACY.md, hole 5): in Firefox its
// URL holds a per-profile UUID, a tracking ID every site could read. The page API,
// the relay (with the fast byte path's bridge in a closed shadow root, spoken to over
// a MessagePort), and the service worker's replies, in Node; the real browsers are
// tests/e2e/test_no_extension_id.py. Also: the service worker tells the host its exact
// origin first on every native port, so the loopback server serves no other.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { afterEach, test } from "node:test";
import vm from "node:vm";

import { startServiceWorker } from "../background/router.js";
import { EXTENSION_ID, FakeBrowser, openFrame, senderFor, settle } from "./fake-browser.js";
import { FakeHost, sha256 } from "./fake-host.js";

const A = "https://a.example";
const MODEL = randomBytes(2 * 1024 * 1024 + 7); // above the fast path's threshold
const openPorts = [];
afterEach(() => {
  for (const port of openPorts.splice(0)) port.close();
});

/** Just enough DOM for the relay's bridge: elements, a closed shadow root, an iframe
 *  whose "load" fires when its src is set, and whose window the test plays. */
function fakeDocument(onBridgeMessage) {
  const made = { roots: [], frames: [], attached: [] };
  const element = (tag) => {
    const listeners = {};
    const node = {
      tag, hidden: false, isConnected: false, attributes: {}, children: [],
      setAttribute: (k, v) => (node.attributes[k] = v),
      addEventListener: (type, fn) => (listeners[type] = fn),
      append: (child) => node.children.push(child),
      remove: () => (node.isConnected = false),
      attachShadow(options) {
        const root = { mode: options.mode, children: [], append: (child) => root.children.push(child) };
        made.roots.push(root);
        return root;
      },
    };
    if (tag === "iframe") {
      node.contentWindow = { postMessage: (data, targetOrigin, transfer) => onBridgeMessage(data, targetOrigin, transfer) };
      Object.defineProperty(node, "src", {
        set(url) {
          node.url = url;
          setImmediate(() => listeners.load?.());
        },
        get: () => node.url,
      });
      made.frames.push(node);
    }
    return node;
  };
  const documentElement = element("html");
  documentElement.append = (child) => {
    child.isConnected = true;
    made.attached.push(child);
  };
  return { made, document: { createElement: element, documentElement, body: null } };
}

/** Plays bridge/bridge.js: takes the port, says ready, answers each ticket with `bytes`. */
function fakeBridge(bytes) {
  const seen = [];
  const onMessage = (data, targetOrigin, transfer) => {
    seen.push({ data, targetOrigin, transfer });
    openPorts.push(data.port); // closed after each test: an open port keeps Node running
    const port = data.port;
    port.onmessage = (event) => {
      const buffer = new Uint8Array(bytes).buffer;
      port.postMessage({ ticket: event.data.ticket, buffer }, [buffer]);
    };
    port.postMessage({ ready: true });
  };
  return { seen, onMessage };
}

async function pageWith(bridge) {
  const host = new FakeHost();
  const browser = new FakeBrowser(host);
  await browser.startWorker(startServiceWorker).ready;
  const { made, document } = fakeDocument(bridge.onMessage);
  const frame = openFrame(browser, { origin: A, document });
  host.store(MODEL, `${A} ${A}`);
  return { host, browser, made, ...frame };
}

test("a whole model comes through the bridge, and nothing the page saw names the extension", async () => {
  const bridge = fakeBridge(MODEL);
  const { webmodels, window, made } = await pageWith(bridge);

  const model = await webmodels.load({ sha256: sha256(MODEL) });
  const bytes = Buffer.from(await model.arrayBuffer());
  await settle();

  assert.ok(bytes.equals(MODEL));
  // The bridge frame sits in a closed shadow root (page script cannot reach its src)
  // and was handed a MessagePort, posted at the extension's origin only.
  assert.equal(made.roots.length, 1);
  assert.equal(made.roots[0].mode, "closed");
  assert.equal(made.roots[0].children[0], made.frames[0]);
  assert.equal(made.frames[0].src, `chrome-extension://${EXTENSION_ID}/bridge/bridge.html`);
  assert.equal(made.attached[0].hidden, true);
  assert.equal(bridge.seen.length, 1);
  assert.equal(bridge.seen[0].targetOrigin, `chrome-extension://${EXTENSION_ID}`);
  // What reached the page's window: replies, a ticket, the bytes, at its own origin.
  const fromBridge = window.posted.filter((p) => p.data.dir === "from-bridge");
  assert.equal(fromBridge.length, 1);
  assert.equal(fromBridge[0].targetOrigin, A);
  for (const { data, targetOrigin } of window.posted) {
    const text = JSON.stringify({ ...data, buffer: undefined }) + targetOrigin;
    assert.ok(!text.includes(EXTENSION_ID) && !text.includes("-extension://"), text);
  }
  // Nor does the API's own surface.
  const surface = JSON.stringify({ ...webmodels, info: model.info, workerScript: webmodels.workerScript });
  assert.ok(!surface.includes(EXTENSION_ID) && !surface.includes("-extension://"), surface);
});

test("a bridge that never starts leaves the page on native messaging, none the wiser", async () => {
  const blocked = { onMessage: (data) => openPorts.push(data.port) }; // a frame a policy blocked
  // The relay gives the bridge 5 s to start (BRIDGE_START_MS); its frame gets a timer
  // that waits 100 ms for that delay instead (the same path, so the suite does not sit
  // through 5 s). Any other delay, the 120 s answer timeout included, is unchanged.
  const realSetTimeout = globalThis.setTimeout;
  globalThis.setTimeout = (fn, ms, ...args) => realSetTimeout(fn, ms === 5_000 ? 100 : ms, ...args);
  let page;
  try {
    page = await pageWith(blocked);
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
  const { webmodels, window } = page;
  const started = Date.now();
  const bytes = Buffer.from(await (await webmodels.load({ sha256: sha256(MODEL) })).arrayBuffer());
  assert.ok(bytes.equals(MODEL));
  assert.ok(Date.now() - started < 20_000);
  const errors = window.posted.filter((p) => p.data.dir === "from-bridge").map((p) => p.data.error);
  assert.deepEqual(errors, ["the bridge did not start"]);
});

test("workerScript is a blob: URL whose script is the worker client", async () => {
  const { webmodels } = await pageWith(fakeBridge(MODEL));
  const url = webmodels.workerScript;
  assert.match(url, /^blob:/);
  assert.equal(webmodels.workerScript, url); // one per page
  assert.ok(!url.includes(EXTENSION_ID));
  const { resolveObjectURL } = await import("node:buffer");
  const source = await resolveObjectURL(url).text();
  // Run in a worker scope, it installs the worker's API.
  class WorkerGlobalScope {}
  const scope = Object.assign(new WorkerGlobalScope(), { addEventListener() {}, navigator: {} });
  const context = vm.createContext({ WorkerGlobalScope, self: scope, navigator: scope.navigator, Object, Map });
  vm.runInContext(source, context);
  assert.equal(typeof scope.webmodels.load, "function");
  assert.equal(typeof scope.navigator.crossOriginStorage.requestFileHandle, "function");
});

test("the service worker tells the host its exact origin first on every native port, trusted", async () => {
  const host = new FakeHost();
  const browser = new FakeBrowser(host);
  await browser.startWorker(startServiceWorker).ready;
  const page = browser.connect(senderFor({ origin: A }), "webmodels-page");
  page.postMessage({ id: 1, method: "hello", params: { extension_origin: "moz-extension://forged" } });
  await settle();
  host.exit("crashed");
  await settle();
  page.postMessage({ id: 2, method: "models.list", params: {} });
  await settle();

  assert.equal(host.starts, 2);
  const expected = { method: "hello", params: { extension_origin: `chrome-extension://${EXTENSION_ID}` } };
  assert.deepEqual(host.greetings.map((g) => ({ method: g.method, params: g.params })), [expected, expected]);
  for (const greeting of host.greetings) {
    assert.deepEqual(greeting.context, { partition: null, user_activation: true, trusted: true });
  }
  // A page's own "introduction" reaches the host as the page's: untrusted, ignored there.
  const forged = host.seen.find((m) => m.params?.extension_origin === "moz-extension://forged");
  assert.equal(forged.context.trusted, false);
});
