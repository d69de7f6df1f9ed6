// The fast byte path's bridge (docs/design.md#fast-byte-paths): an invisible extension frame that the
// page's relay (content/relay.js) embeds in a closed shadow root, to receive a whole
// model at loopback speed. The relay hands it a MessagePort; over that port it gets
// tickets (from the service worker's answer to `models.open`), redeems each with the
// service worker, fetches the one-time URL on 127.0.0.1 (extension frames are exempt
// from Local Network Access prompts; the host checks our origin) and transfers the
// ArrayBuffer back over the port.
//
// Nothing here ever posts to a window: a window message carries its sender's origin,
// and ours (moz-extension://<per-profile UUID> in Firefox) would tell every site who
// the user is. MessagePort messages carry no origin.
//
// relay -> bridge   window message {__webmodels: 1, dir: "to-bridge", port}  (once)
// bridge -> relay   port: {ready: true}, then {ticket, buffer} | {ticket, error}
// relay -> bridge   port: {ticket}
//
// A streamed read (`model.stream()`) asks for the response body itself, transferred
// as it arrives (never buffered here); a cancel in the page aborts the fetch:
//
// relay -> bridge   port: {ticket, stream: true, reply} (a MessagePort the page holds)
// bridge -> page    reply: {body} (a ReadableStream) | {error}
//
// Writes (the fast write path): the relay hands over a Blob with the ticket of a
// `cos.write.open`; the bridge PUTs it to the host's one-time upload URL (no copies: the
// Blob is structured-cloned by reference) and answers with the host's verdict, which
// comes only once the bytes are verified and stored:
//
// relay -> bridge   port: {ticket, blob}
// bridge -> relay   port: {ticket, result} | {ticket, failure} (the host's error) | {ticket, error}
//
// A PUT that fails (no loopback listener, the host went away mid-body) is not the end:
// the bridge hands the Blob to the service worker, which sends it through native
// messaging (background/native-write.js); the verdict comes back the same way.

import { domExceptionName } from "../shared/errors.js";

const TAG = "__webmodels";
const REDEEM = "webmodels-redeem";
const NATIVE_WRITE = "webmodels-native-write"; // background/native-write.js

async function putModel(ticket, pageOrigin, blob) {
  const held = await chrome.runtime.sendMessage({ type: REDEEM, ticket });
  if (!held || held.origin !== pageOrigin) throw new Error("the ticket is not valid here");
  if (blob.size !== held.size) throw new Error(`${blob.size} bytes where ${held.size} were announced`);
  let reply;
  try {
    reply = await fetch(held.url, {
      method: "PUT", body: blob, cache: "no-store", credentials: "omit", redirect: "error",
    });
  } catch (error) {
    return writeNatively(held, blob, error); // no listener, or the host went away mid-body
  }
  const answer = await reply.json().catch(() => null);
  if (answer?.ok === true) return { result: answer.result };
  if (answer?.ok === false && typeof answer.error?.code === "string") {
    return { failure: { ...answer.error, name: domExceptionName(answer.error.code) } };
  }
  return writeNatively(held, blob, new Error(`the host answered ${reply.status}`));
}

/** A write the PUT could not carry, through native messaging by the service worker
 *  (background/native-write.js), the Blob by reference; rethrows `why` where there is
 *  no service worker to ask (Firefox: the relay sends it then). */
async function writeNatively(held, blob, why) {
  const worker = typeof held.fallback === "string" ? navigator.serviceWorker?.controller : null;
  if (!worker) throw why;
  const channel = new MessageChannel();
  const answer = new Promise((resolve) => {
    channel.port1.onmessage = (event) => resolve(event.data);
  });
  worker.postMessage({ type: NATIVE_WRITE, token: held.fallback, blob }, [channel.port2]);
  const verdict = await answer;
  channel.port1.close();
  if (verdict?.result != null) return { result: verdict.result };
  if (verdict?.failure != null) return { failure: verdict.failure };
  throw new Error(verdict?.error ?? "the service worker sent no verdict");
}

async function fetchModel(ticket, pageOrigin) {
  const held = await chrome.runtime.sendMessage({ type: REDEEM, ticket });
  if (!held || held.origin !== pageOrigin) throw new Error("the ticket is not valid here");
  const reply = await fetch(held.url, { cache: "no-store", credentials: "omit", redirect: "error" });
  if (!reply.ok) throw new Error(`the host answered ${reply.status}`);
  const buffer = await reply.arrayBuffer();
  if (buffer.byteLength !== held.size) throw new Error(`got ${buffer.byteLength} of ${held.size} bytes`);
  return buffer;
}

/** The one-time URL's response body, unread: a ReadableStream handed on to the page,
 *  which reads it as it arrives (a cancel there aborts this fetch). */
async function fetchBody(ticket, pageOrigin) {
  const held = await chrome.runtime.sendMessage({ type: REDEEM, ticket });
  if (!held || held.origin !== pageOrigin) throw new Error("the ticket is not valid here");
  const reply = await fetch(held.url, { cache: "no-store", credentials: "omit", redirect: "error" });
  if (!reply.ok || reply.body === null) throw new Error(`the host answered ${reply.status}`);
  if (reply.headers.get("Content-Length") !== String(held.size)) {
    await reply.body.cancel();
    throw new Error(`the host announced ${reply.headers.get("Content-Length")} of ${held.size} bytes`);
  }
  return reply.body;
}

/** Serves the tickets that come over `port`, for a parent at `pageOrigin` (the
 *  ticket must have been issued to that origin). */
function serve(port, pageOrigin) {
  port.onmessage = async (event) => {
    const ticket = String(event.data?.ticket);
    const blob = event.data?.blob;
    if (blob != null) {
      const answer = await putModel(ticket, pageOrigin, blob).catch((error) => ({ error: String(error?.message ?? error) }));
      port.postMessage({ ticket, ...answer });
      return;
    }
    if (event.data?.stream === true && event.data.reply instanceof MessagePort) {
      await sendBody(event.data.reply, ticket, pageOrigin);
      return;
    }
    try {
      const buffer = await fetchModel(ticket, pageOrigin);
      port.postMessage({ ticket, buffer }, [buffer]);
    } catch (error) {
      port.postMessage({ ticket, error: String(error?.message ?? error) });
    }
  };
  port.postMessage({ ready: true });
}

/** Answers a streamed read on `reply`, the page's own port: the body, or an error. */
async function sendBody(reply, ticket, pageOrigin) {
  let body = null;
  try {
    body = await fetchBody(ticket, pageOrigin);
    reply.postMessage({ body }, [body]);
  } catch (error) {
    body?.cancel().catch(() => {}); // not transferable here: the page reads through native messaging
    reply.postMessage({ error: String(error?.message ?? error) });
  }
  reply.close();
}

window.addEventListener("message", (event) => {
  if (event.source !== window.parent || window.parent === window) return;
  const data = event.data;
  if (data === null || typeof data !== "object" || data[TAG] !== 1 || data.dir !== "to-bridge") return;
  if (!(data.port instanceof MessagePort)) return;
  serve(data.port, event.origin);
});
