// The fast byte path's bridge (DESIGN §6): an invisible extension frame that a page
// embeds to receive a whole model at loopback speed. The page posts it a ticket (from
// the service worker's answer to `models.open`); the bridge redeems the ticket with
// the service worker, fetches the one-time URL on 127.0.0.1 (extension frames are
// exempt from Local Network Access prompts; the host checks our Origin), and
// transfers the ArrayBuffer to its parent, addressed to the origin the ticket was
// issued to — so a frame that embedded the bridge with a stolen ticket gets nothing.
//
// page -> bridge   {__webmodels: 1, dir: "to-bridge", ticket}
// bridge -> page   {__webmodels: 1, dir: "from-bridge", ready: true}   once, on start
//                  {__webmodels: 1, dir: "from-bridge", ticket, buffer} | {…, error}

const TAG = "__webmodels";
const REDEEM = "webmodels-redeem";

async function fetchModel(ticket, pageOrigin) {
  const held = await chrome.runtime.sendMessage({ type: REDEEM, ticket });
  if (!held || held.origin !== pageOrigin) throw new Error("the ticket is not valid here");
  const reply = await fetch(held.url, { cache: "no-store", credentials: "omit", redirect: "error" });
  if (!reply.ok) throw new Error(`the host answered ${reply.status}`);
  const buffer = await reply.arrayBuffer();
  if (buffer.byteLength !== held.size) throw new Error(`got ${buffer.byteLength} of ${held.size} bytes`);
  return { buffer, origin: held.origin };
}

// Tell the embedding page we run (it falls back to native messaging if we never do:
// a frame blocked by a policy still fires "load"). Nothing else goes out unasked.
if (window.parent !== window) window.parent.postMessage({ [TAG]: 1, dir: "from-bridge", ready: true }, "*");

window.addEventListener("message", async (event) => {
  if (event.source !== window.parent || window.parent === window) return;
  const data = event.data;
  if (data === null || typeof data !== "object" || data[TAG] !== 1 || data.dir !== "to-bridge") return;
  const ticket = String(data.ticket);
  try {
    const { buffer, origin } = await fetchModel(ticket, event.origin);
    window.parent.postMessage({ [TAG]: 1, dir: "from-bridge", ticket, buffer }, origin, [buffer]);
  } catch (error) {
    // Only the page that sent the ticket hears why (it falls back to native messaging).
    const target = event.origin === "null" ? "*" : event.origin;
    window.parent.postMessage({ [TAG]: 1, dir: "from-bridge", ticket, error: String(error?.message ?? error) }, target);
  }
});
