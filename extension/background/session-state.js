// What the service worker keeps across its own restarts, in chrome.storage.session
// (in memory, cleared when the browser quits, not readable by content scripts).
//
// Only the id epoch needs to survive. Everything else about a request lives on
// objects that die with the worker: the native port (and with it the host process
// and its uploads) and the callers' runtime ports. A restarted worker therefore
// cannot route a reply to the wrong caller; the callers see their ports close and
// reject or retry what was in flight (content/relay.js, page/wire.js).

const EPOCH_KEY = "webmodels.epoch";

/** The next id epoch: one more than the last worker's in this browser session. */
export async function nextEpoch(storage) {
  try {
    const stored = await storage.get(EPOCH_KEY);
    const last = Number.isSafeInteger(stored?.[EPOCH_KEY]) ? stored[EPOCH_KEY] : 0;
    await storage.set({ [EPOCH_KEY]: last + 1 });
    return last + 1;
  } catch {
    // No session storage (a browser without it): a random epoch is unique enough.
    return `r${Math.floor(Math.random() * 2 ** 48).toString(36)}`;
  }
}
