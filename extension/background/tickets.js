// The fast byte path's tickets (docs/design.md#fast-byte-paths). The host answers `models.open` with a
// one-time URL on 127.0.0.1; that URL must never reach the page (a page fetching
// loopback meets Local Network Access prompts, and must not be able to pass the URL
// around). The service worker keeps the URL and gives the page a ticket instead; the
// extension's bridge frame, embedded by the page's relay (content/relay.js) in a
// closed shadow root, redeems the ticket, fetches the URL and hands the ArrayBuffer
// to the relay over a MessagePort, which transfers it to the page.

const TICKET_TTL_MS = 30_000;
const MAX_TICKETS = 256;
// A write's fallback token (native-write.js) is used when its PUT fails, which may be
// after a long body: it lives longer than the ticket, once.
const FALLBACK_TTL_MS = 30 * 60_000;
export const BRIDGE_PATH = "bridge/bridge.html";
export const REDEEM = "webmodels-redeem";

function randomTicket() {
  const bytes = new Uint8Array(16); // 128 bits
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Tickets {
  #byId = new Map(); // ticket -> {url, size, tabId, origin, write, expires}
  #fallbacks = new Map(); // token -> {sha256, size, context, expires}
  #now;
  #random;

  constructor({ now = Date.now, random = randomTicket } = {}) {
    this.#now = now;
    this.#random = random;
  }

  /** The page's view of a `models.open` result: a ticket and the size; the URL stays
   *  here, and nothing names the extension (its URL would identify the profile in
   *  Firefox). `tabId`, `origin`: the frame that asked (from its port's sender, never
   *  from a message). */
  issue(result, { tabId, origin, write = null }) {
    this.#expire();
    while (this.#byId.size >= MAX_TICKETS) this.#byId.delete(this.#byId.keys().next().value);
    const ticket = this.#random();
    const ttl = Math.min(TICKET_TTL_MS, Math.max(0, Number(result.expires_in) * 1000 || 0));
    this.#byId.set(ticket, { url: result.url, size: result.size, tabId, origin, write, expires: this.#now() + ttl });
    return { ticket, size: result.size };
  }

  /** {url, origin, size} for the bridge page of the asking frame's tab, once; null
   *  for anything else (unknown, spent or expired tickets, other tabs, other senders). */
  redeem(ticket, sender, runtime) {
    const held = typeof ticket === "string" ? this.#byId.get(ticket) : undefined;
    if (!held) return null;
    this.#byId.delete(ticket); // one try, whoever makes it
    const fromBridge = sender?.id === runtime.id && typeof sender.url === "string" &&
      sender.url.split(/[?#]/)[0] === runtime.getURL(BRIDGE_PATH);
    if (!fromBridge || sender.tab?.id !== held.tabId || held.expires < this.#now()) return null;
    const redeemed = { url: held.url, origin: held.origin, size: held.size };
    if (typeof held.write?.sha256 === "string") redeemed.fallback = this.#fallbackFor(held);
    return redeemed;
  }

  /** The write a bridge's fallback token stands for ({sha256, size, context}), once;
   *  null for unknown, spent or expired tokens. */
  takeFallback(token) {
    const held = typeof token === "string" ? this.#fallbacks.get(token) : undefined;
    if (!held) return null;
    this.#fallbacks.delete(token);
    return held.expires < this.#now() ? null : { sha256: held.sha256, size: held.size, context: held.context };
  }

  #fallbackFor(held) {
    while (this.#fallbacks.size >= MAX_TICKETS) this.#fallbacks.delete(this.#fallbacks.keys().next().value);
    const token = this.#random();
    const { sha256, context } = held.write;
    this.#fallbacks.set(token, { sha256, size: held.size, context, expires: this.#now() + FALLBACK_TTL_MS });
    return token;
  }

  get size() {
    return this.#byId.size;
  }

  #expire() {
    const now = this.#now();
    for (const [ticket, held] of this.#byId) if (held.expires < now) this.#byId.delete(ticket);
    for (const [token, held] of this.#fallbacks) if (held.expires < now) this.#fallbacks.delete(token);
  }
}
