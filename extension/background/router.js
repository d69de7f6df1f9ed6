// The service worker's wiring: which runtime ports are accepted, and with which
// context their requests reach the host.
//
//   "webmodels-page"    content/relay.js in a web page's frame: the partition comes
//                       from `port.sender` (shared/partition.js), user activation
//                       from the relay; never trusted.
//   "webmodels-manage"  the popup (or the popup opened as a tab): trusted, no
//                       partition; only for this extension's own pages.

import { Channel } from "./channel.js";
import { NativeLink } from "./native-link.js";
import { nextEpoch } from "./session-state.js";
import { wireError } from "../shared/errors.js";
import { isExtensionPage, partitionFromSender } from "../shared/partition.js";
import { RouteTable, idSource } from "../shared/routes.js";
import { NATIVE_WRITE, blobUploader, nativeWriteHandler } from "./native-write.js";
import { REDEEM, Tickets } from "./tickets.js";

export const PAGE_PORT = "webmodels-page";
export const MANAGE_PORT = "webmodels-manage";

// Methods whose result is a one-time loopback URL (the fast byte path: reads, and
// cos.write.open's URL to PUT a Cross-Origin Storage write to).
const LOOPBACK_METHODS = new Set(["models.open", "sessions.output_open", "cos.write.open"]);

// A relay's whole-Blob write (channel.js BLOB_WRITE), which only ports that carry Blobs
// (Firefox's) can make: chunk size and chunks in flight measured there. Firefox's native
// messaging costs more per byte the larger the message (scripts/bench/page_write.py
// --sweep, 32 MiB: 512 KiB x 3 ran 7.5x as fast as 8 MiB one at a time; 16 MiB chunks
// ran slower than 8 MiB ones).
const BLOB_WRITE_CHUNK = 512 << 10;
const BLOB_WRITE_IN_FLIGHT = 3;

const TRUSTED_CONTEXT = Object.freeze({ partition: null, user_activation: true, trusted: true });

/** Registers the listeners (synchronously, as MV3 requires) and returns the parts
 *  for tests. `api`: the `chrome` namespace (or a stand-in). */
export function startServiceWorker(api, { log = console } = {}) {
  const runtime = api.runtime;
  const routes = new RouteTable();
  let next = null;
  const ready = nextEpoch(api.storage?.session).then((epoch) => {
    next = idSource(epoch);
  });
  const nextId = () => next();
  // The host learns this extension's exact origin from us, first on every native
  // port: Firefox names only the add-on id in the host's argv, and the loopback
  // server must serve this origin only (a page cannot send a trusted context).
  const greeting = () => ({
    id: nextId(),
    method: "hello",
    params: { extension_origin: runtime.getURL("").replace(/\/$/, "") },
    context: { ...TRUSTED_CONTEXT },
  });
  const link = new NativeLink(runtime, { log, greeting });

  const tickets = new Tickets();
  const upload = blobUploader({ link, nextId });
  const uploadBlob = (context, sha256, blob, options) =>
    upload(context, sha256, blob, { chunk: BLOB_WRITE_CHUNK, inFlight: BLOB_WRITE_IN_FLIGHT, ...options });
  runtime.onConnect.addListener((port) => {
    const blobs = port.name === PAGE_PORT ? uploadBlob : null; // a page frame's relay writes
    const options = { link, routes, nextId, ready, uploadBlob: blobs, ...contextFor(port, runtime, tickets) };
    if (options.makeContext) new Channel(port, options);
  });
  // The bridge frame redeems a ticket for the loopback URL (tickets.js).
  runtime.onMessage?.addListener((message, sender, sendResponse) => {
    if (message?.type !== REDEEM) return false;
    sendResponse(tickets.redeem(message.ticket, sender, runtime));
    return false;
  });
  // The bridge hands over a write its PUT could not carry, Blob and all (Chromium: the
  // bridge is a client of this service worker; Firefox's relay does it, relay.js).
  if (typeof ServiceWorkerGlobalScope === "function" && self instanceof ServiceWorkerGlobalScope) {
    const handler = nativeWriteHandler({ link, nextId, ready, tickets, runtime });
    self.addEventListener("message", (event) => {
      if (event.data?.type === NATIVE_WRITE) handler(event);
    });
  }
  return { link, routes, ready, tickets };
}

function contextFor(port, runtime, tickets) {
  if (port.name === MANAGE_PORT) {
    if (isExtensionPage(port.sender, runtime.id, runtime.getURL(""))) {
      return { makeContext: () => ({ ...TRUSTED_CONTEXT }) };
    }
    return {
      makeContext: () => null,
      refusal: wireError("access_denied", "management is only for the extension's own pages"),
    };
  }
  if (port.name === PAGE_PORT) {
    const who = partitionFromSender(port.sender, runtime.id);
    if (!who.ok) return { makeContext: () => null, refusal: who.error };
    const partition = Object.freeze({ ...who.partition });
    const asker = { tabId: port.sender?.tab?.id, origin: partition.origin };
    return {
      makeContext: (message) => ({
        partition: { ...partition },
        user_activation: message?.user_activation === true,
        trusted: false,
      }),
      // A page gets a ticket for the loopback URL, never the URL itself (nor the
      // bridge's: its relay embeds the bridge, see content/relay.js).
      rewrite: (method, result, route) => {
        if (!LOOPBACK_METHODS.has(method)) return result;
        if (method !== "cos.write.open") return tickets.issue(result, asker);
        // What the service worker needs to send the write itself (native-write.js).
        const context = { partition: { ...partition }, user_activation: false, trusted: false };
        return tickets.issue(result, { ...asker, write: { sha256: route?.sha256, context } });
      },
    };
  }
  return {}; // not one of ours: left alone
}
