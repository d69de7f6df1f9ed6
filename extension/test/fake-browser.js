// Stand-ins for what the extension gets from the browser, for Node's test runner:
// runtime ports (messages JSON-copied and delivered in order, like Chromium's),
// a `chrome` namespace for the service worker, a page window shared by a MAIN and an
// ISOLATED world (two vm contexts), and storage.session that outlives workers.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

export const EXTENSION_ID = "nkalnjoncikobhonhokfhfdgffafbfch";
export const EXTENSION_BASE = `chrome-extension://${EXTENSION_ID}/`;
const ROOT = fileURLToPath(new URL("..", import.meta.url));

export const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Lets queued port messages and promise jobs run (a few rounds of them). */
export async function settle(rounds = 20) {
  for (let i = 0; i < rounds; i++) await tick();
}

export function browserEvent() {
  const listeners = [];
  return {
    addListener: (listener) => listeners.push(listener),
    removeListener: (listener) => listeners.splice(listeners.indexOf(listener) >>> 0, 1),
    fire: (...args) => listeners.slice().forEach((listener) => listener(...args)),
  };
}

function makePort(name, sender) {
  const port = {
    name,
    sender,
    peer: null,
    connected: true,
    error: null,
    onMessage: browserEvent(),
    onDisconnect: browserEvent(),
    postMessage(message) {
      if (!port.connected) throw new Error("Attempting to use a disconnected port object");
      const copy = JSON.parse(JSON.stringify(message)); // runtime messaging is JSON
      setImmediate(() => port.peer.connected && port.peer.onMessage.fire(copy, port.peer));
    },
    /** Closes both ends; the other end's onDisconnect fires (with `reason` as its
     *  `error`, as Firefox reports it). */
    disconnect(reason) {
      if (!port.connected) return;
      port.connected = false;
      setImmediate(() => {
        port.peer.connected = false;
        if (reason) port.peer.error = { message: reason };
        port.peer.onDisconnect.fire(port.peer);
      });
    },
  };
  return port;
}

export function portPair(name, sender) {
  const near = makePort(name, undefined);
  const far = makePort(name, sender);
  near.peer = far;
  far.peer = near;
  return [near, far];
}

export function fakeStorage() {
  const data = new Map();
  return {
    data,
    async get(key) {
      return data.has(key) ? { [key]: structuredClone(data.get(key)) } : {};
    },
    async set(items) {
      for (const [key, value] of Object.entries(items)) data.set(key, structuredClone(value));
    },
  };
}

/** A browser with one extension: its service worker (started with `startWorker`,
 *  stopped with `killWorker`), a native host, and frames that connect to it. */
export class FakeBrowser {
  constructor(host) {
    this.host = host;
    this.storage = fakeStorage();
    this.api = null;
    this.workerPorts = [];
  }

  startWorker(start) {
    this.start = start;
    this.workerPorts = [];
    const runtime = {
      id: EXTENSION_ID,
      lastError: undefined,
      getURL: (path = "") => EXTENSION_BASE + path,
      onConnect: browserEvent(),
      onMessage: browserEvent(),
      connectNative: (name) => {
        const [worker, host] = portPair(name, undefined);
        this.workerPorts.push(worker);
        this.host.attach(host, name);
        return worker;
      },
    };
    this.api = { runtime, storage: { session: this.storage } };
    this.worker = start(this.api, { log: { warn() {} } });
    return this.worker;
  }

  /** The worker stops: every port it held closes (the host sees EOF). */
  killWorker() {
    for (const port of this.workerPorts) port.disconnect();
    this.workerPorts = [];
    this.api = null;
  }

  /** runtime.connect from a content script or extension page with `sender`; like
   *  Chromium, a stopped worker is started for it. */
  connect(sender, name) {
    if (!this.api) this.startWorker(this.start);
    const [caller, worker] = portPair(name, sender);
    this.workerPorts.push(worker);
    const api = this.api;
    setImmediate(() => api.runtime.onConnect.fire(worker));
    return caller;
  }
}

/** A window as both worlds see it: postMessage to itself only, structured-cloned,
 *  delivered as a "message" event whose source is this window. */
export class FakeWindow extends EventTarget {
  constructor(origin) {
    super();
    this.location = { origin };
    this.isSecureContext = origin === "null" || !origin.startsWith("http:") || origin.includes("localhost");
    this.posted = [];
  }

  postMessage(data, targetOrigin, transfer = []) {
    const copy = structuredClone(data, { transfer });
    this.posted.push({ data: copy, targetOrigin }); // as main-realm objects
    if (targetOrigin !== "*" && targetOrigin !== this.location.origin) return;
    this.deliver(copy, this);
  }

  /** A message event as if posted by `source` (another frame, when not this). */
  deliver(data, source) {
    setImmediate(() => this.dispatchEvent(Object.assign(new Event("message"), { data, source })));
  }
}

export function runScript(path, context) {
  const source = readFileSync(ROOT + path, "utf8");
  vm.runInContext(source, context, { filename: path });
}

/** The MAIN-world content scripts, in the manifest's order. */
export function mainWorldScripts() {
  const manifest = JSON.parse(readFileSync(ROOT + "manifest.json", "utf8"));
  return manifest.content_scripts.find((script) => script.world === "MAIN").js;
}

export const senderFor = ({ origin, frameId = 0, topUrl = `${origin}/` }) => ({
  id: EXTENSION_ID,
  origin,
  url: `${origin}/page.html`,
  frameId,
  documentId: `doc-${origin}-${frameId}`,
  documentLifecycle: "active",
  tab: { id: 7, url: topUrl },
});

/** One frame with the extension's content scripts: the relay in an ISOLATED
 *  context and the page API in a MAIN context, sharing one window. Returns the
 *  MAIN world's globals (navigator.crossOriginStorage, window.webmodels). */
export function openFrame(browser, { origin = "https://a.example", frameId = 0, topUrl, activation = { isActive: false }, document } = {}) {
  const window = new FakeWindow(origin);
  const sender = senderFor({ origin, frameId, topUrl });
  const isolated = vm.createContext({
    window,
    navigator: { userActivation: activation },
    chrome: { runtime: { connect: ({ name }) => browser.connect(sender, name), getURL: (path = "") => EXTENSION_BASE + path } },
    ...(document ? { document, MessageChannel, ArrayBuffer, setTimeout, clearTimeout } : {}),
  });
  runScript("content/relay.js", isolated);
  const main = vm.createContext({
    window,
    navigator: {},
    DOMException, Blob, File, Event, EventTarget, ReadableStream, WritableStream, Response, URL,
    atob, btoa, console, setTimeout, clearTimeout,
    ...(document ? { document, ArrayBuffer } : {}), // buffers the relay posts are of this realm
  });
  for (const file of mainWorldScripts()) runScript(file, main);
  return { window, main, navigator: main.navigator, webmodels: window.webmodels ?? main.window.webmodels };
}
