// The fast byte path's tickets (docs/design.md#fast-byte-paths). The host answers `models.open` with a
// one-time URL on 127.0.0.1; that URL must never reach the page (a page fetching
// loopback meets Local Network Access prompts, and must not be able to pass the URL
// around). The service worker keeps the URL and gives the page a ticket instead; the
// extension's bridge frame, embedded by the page's relay (content/relay.js) in a
// closed shadow root, redeems the ticket, fetches the URL and hands the ArrayBuffer
// to the relay over a MessagePort, which transfers it to the page.

const TICKET_TTL_MS = 30_000;
const MAX_TICKETS = 256;
export const BRIDGE_PATH = "bridge/bridge.html";
export const REDEEM = "webmodels-redeem";

function randomTicket() {
  const bytes = new Uint8Array(16); // 128 bits
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Tickets {
  #byId = new Map(); // ticket -> {url, size, tabId, origin, expires}
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
  issue(result, { tabId, origin }) {
    this.#expire();
    while (this.#byId.size >= MAX_TICKETS) this.#byId.delete(this.#byId.keys().next().value);
    const ticket = this.#random();
    const ttl = Math.min(TICKET_TTL_MS, Math.max(0, Number(result.expires_in) * 1000 || 0));
    this.#byId.set(ticket, { url: result.url, size: result.size, tabId, origin, expires: this.#now() + ttl });
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
    return { url: held.url, origin: held.origin, size: held.size };
  }

  get size() {
    return this.#byId.size;
  }

  #expire() {
    const now = this.#now();
    for (const [ticket, held] of this.#byId) if (held.expires < now) this.#byId.delete(ticket);
  }
}
