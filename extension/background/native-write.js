// Writes the bridge could not PUT (no loopback listener, the host went away mid-body),
// sent through native messaging by the service worker itself. The bridge hands over
// the Blob by reference (a service worker message is a structured clone), so its bytes
// are read once, here, and cross one JSON hop (here -> host) instead of two (page ->
// service worker -> host): about half the browser's CPU per byte of the page's own
// native-messaging loop, which is what bounds it on a busy machine.
//
// bridge -> SW   navigator.serviceWorker.controller.postMessage(
//                  {type: "webmodels-native-write", token, blob}, [port])
// SW -> bridge   port: {result} | {failure} (the host's error, as pages get it) | {error}
//
// The token comes from redeeming the write's ticket (tickets.js): it names the
// partition that opened the write and the SHA-256 it announced, and works once. The
// host receives the whole Blob again as a new upload and publishes it only if it
// hashes to that SHA-256.

import { errorForPage } from "../shared/errors.js";
import { BRIDGE_PATH } from "./tickets.js";

export const NATIVE_WRITE = "webmodels-native-write";
const HOST_EXITED = /^the webmodels host exited/; // shared/errors.js hostExited
const UPLOAD_CHUNK = 16 << 20; // raw bytes per cos.write.chunk (base64 stays below the 64 MiB frame limit)
const CHUNKS_IN_FLIGHT = 3; // the host takes each in turn, up to 64 MiB ahead (uploads.py MAX_AHEAD)

function toBase64(bytes) {
  if (typeof bytes.toBase64 === "function") return bytes.toBase64();
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** `upload(context, sha256, blob, options)`: sends `blob` through native messaging as
 *  `cos.write.begin` / `chunk` / `commit` for `context`'s partition and answers the
 *  commit's result, or rejects with {failure} (the host's error) or an Error. Chunks go
 *  in order, `inFlight` at a time (the next is read and encoded while the host takes the
 *  ones before it); `stopped()` true between chunks aborts the upload. */
export function blobUploader({ link, nextId }) {
  const call = (context, method, params) =>
    new Promise((resolve, reject) => {
      link.send(
        { id: nextId(), method, params, context },
        { onReply: (reply) => (reply.ok ? resolve(reply.result ?? {}) : reject({ failure: reply.error })) },
      );
    });

  // A PUT cut because the host went away may fail before the browser tells us the
  // native port closed: a `begin` sent to that host is asked once more of the next.
  async function begin(context, params) {
    try {
      return await call(context, "cos.write.begin", params);
    } catch (error) {
      if (!HOST_EXITED.test(error?.failure?.message ?? "")) throw error;
      return call(context, "cos.write.begin", params);
    }
  }

  return async function upload(context, sha256, blob, { chunk = UPLOAD_CHUNK, inFlight: depth = CHUNKS_IN_FLIGHT, stopped = () => false } = {}) {
    let { upload_id: uploadId } = await begin(context, { sha256, size: blob.size });
    try {
      const inFlight = [];
      for (let offset = 0; offset < blob.size; offset += chunk) {
        const bytes = new Uint8Array(await blob.slice(offset, offset + chunk).arrayBuffer());
        if (stopped()) throw new Error("the write's caller went away");
        const sent = call(context, "cos.write.chunk", { upload_id: uploadId, offset, data: toBase64(bytes) });
        sent.catch(() => {}); // awaited below; a failure aborts the upload (finally)
        inFlight.push(sent);
        if (inFlight.length >= depth) await inFlight.shift();
      }
      for (const sent of inFlight) await sent;
      const committing = uploadId;
      uploadId = null; // a failed commit leaves nothing open on the host
      return await call(context, "cos.write.commit", { upload_id: committing });
    } finally {
      if (uploadId !== null) link.notify({ id: nextId(), method: "cos.write.abort", params: { upload_id: uploadId }, context });
    }
  };
}

/** `event` handler for the service worker's "message" events of type NATIVE_WRITE. */
export function nativeWriteHandler({ link, nextId, ready, tickets, runtime }) {
  const upload = blobUploader({ link, nextId });

  async function answer(event) {
    await ready;
    const fromBridge = String(event.source?.url ?? "").split(/[?#]/)[0] === runtime.getURL(BRIDGE_PATH);
    const held = fromBridge ? tickets.takeFallback(event.data.token) : null;
    const blob = event.data.blob;
    if (!held || !(blob instanceof Blob) || blob.size !== held.size) return { error: "no such write" };
    try {
      return { result: await upload(held.context, held.sha256, blob) };
    } catch (error) {
      if (error?.failure != null) return { failure: errorForPage(error.failure) };
      return { error: String(error?.message ?? error) };
    }
  }

  return (event) => {
    const port = event.ports?.[0];
    if (!port) return;
    const done = answer(event).then((verdict) => port.postMessage(verdict));
    event.waitUntil?.(done);
  };
}
