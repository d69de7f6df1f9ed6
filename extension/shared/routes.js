// Request bookkeeping of the service worker: which host request id belongs to which
// channel (a page frame's or the popup's port) and which id that caller chose.
// Pure: channels are opaque keys here.

import { wireError } from "./errors.js";

const METHOD = /^[a-z][a-z_]*(\.[a-z][a-z_]*)*$/; // noun.verb (and "hello")
const MAX_METHOD = 64;
const MAX_ID = 128; // PROTOCOL.md: an id is an integer or a string of at most 128 characters

export function isRequestId(value) {
  return (
    Number.isSafeInteger(value) ||
    (typeof value === "string" && value.length > 0 && value.length <= MAX_ID)
  );
}

/** A caller's message {id, method, params} checked for shape: {ok: true, request}
 *  or {ok: false, id, error} (id is null when even the id is unusable). Anything
 *  else in the message (a forged `context`, `origin`…) is dropped here. */
export function parseRequest(message) {
  const id = message?.id;
  if (!isRequestId(id)) {
    return { ok: false, id: null, error: wireError("bad_request", "id must be an integer or a short string") };
  }
  const method = message.method;
  if (typeof method !== "string" || method.length > MAX_METHOD || !METHOD.test(method)) {
    return { ok: false, id, error: wireError("bad_request", "method must be a method name such as models.load") };
  }
  const params = message.params ?? {};
  if (params === null || typeof params !== "object" || Array.isArray(params)) {
    return { ok: false, id, error: wireError("bad_request", "params must be an object") };
  }
  return { ok: true, request: { id, method, params } };
}

/** Host request ids: `<epoch>.<n>`. The epoch is bumped (in chrome.storage.session)
 *  each time the service worker starts, so an id is never reused within a browser
 *  session, not even by a restarted worker. */
export function idSource(epoch) {
  let next = 0;
  return () => `${epoch}.${++next}`;
}

export class RouteTable {
  // Only ids and method names (and a write URL's SHA-256, channel.js): request params
  // (which may carry model bytes) are passed through, never kept.
  #byHost = new Map(); // host id -> {channel, callerId, method, sha256}
  #byChannel = new Map(); // channel -> Map(caller id -> host id)

  /** Records a request; false when the channel already has one in flight with
   *  that caller id (ids must be unique among a port's requests in flight). */
  add(hostId, { channel, callerId, method, sha256 }) {
    let ids = this.#byChannel.get(channel);
    if (ids?.has(callerId)) return false;
    if (!ids) this.#byChannel.set(channel, (ids = new Map()));
    ids.set(callerId, hostId);
    this.#byHost.set(hostId, sha256 === undefined ? { channel, callerId, method } : { channel, callerId, method, sha256 });
    return true;
  }

  get(hostId) {
    return this.#byHost.get(hostId);
  }

  hostIdFor(channel, callerId) {
    return this.#byChannel.get(channel)?.get(callerId);
  }

  /** Removes and returns the route of a finished request (undefined if unknown). */
  take(hostId) {
    const route = this.#byHost.get(hostId);
    if (!route) return undefined;
    this.#byHost.delete(hostId);
    const ids = this.#byChannel.get(route.channel);
    ids?.delete(route.callerId);
    if (ids?.size === 0) this.#byChannel.delete(route.channel);
    return route;
  }

  /** Removes every route of a closed channel; returns them as [hostId, route]. */
  dropChannel(channel) {
    const ids = this.#byChannel.get(channel);
    if (!ids) return [];
    this.#byChannel.delete(channel);
    const dropped = [];
    for (const hostId of ids.values()) {
      dropped.push([hostId, this.#byHost.get(hostId)]);
      this.#byHost.delete(hostId);
    }
    return dropped;
  }

  get size() {
    return this.#byHost.size;
  }
}
