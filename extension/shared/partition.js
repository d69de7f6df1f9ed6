// Who is asking, computed from the browser's `sender` (runtime.MessageSender) and
// never from a message body: a page can write anything into its messages, but not
// into `sender` (docs/design.md#privacy). Pure: the extension's id and base URL are arguments.

import { wireError } from "./errors.js";

const WEB_SCHEMES = new Set(["http:", "https:"]);

/** The serialised origin of an http(s) URL ("https://a.example", default port
 *  dropped, host lower-cased and in punycode), or null for anything else: opaque
 *  origins ("null", data:, sandboxed frames), file:, extension URLs, garbage. */
export function webOrigin(url) {
  if (typeof url !== "string") return null;
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (!WEB_SCHEMES.has(parsed.protocol) || !parsed.hostname) return null;
  return parsed.origin;
}

/** The partition's top-level "site" for the URL of the top frame.
 *
 *  A real site is scheme + registrable domain, which needs the Public Suffix List
 *  (a guess such as "the last two labels" would merge every *.co.uk into one
 *  partition: coarser, and so unsafe). Without the list we key by the top frame's
 *  full origin: finer than a site (www.a.example and a.example, or two ports of
 *  localhost, are separate partitions), which is always safe. IP addresses and
 *  localhost are their own site either way. */
export function topSiteOf(url) {
  return webOrigin(url);
}

function refuse(message) {
  return { ok: false, error: wireError("access_denied", message) };
}

/** {ok: true, partition: {top_site, origin}} for a content script's port, or
 *  {ok: false, error} when no partition can be trusted for it. */
export function partitionFromSender(sender, extensionId) {
  if (!sender || sender.id !== extensionId) {
    return refuse("only this extension's content scripts may open a page channel");
  }
  // A prerendered page or one in the back/forward cache is not what the tab shows,
  // so the tab's URL says nothing about its top-level site.
  if (sender.documentLifecycle !== undefined && sender.documentLifecycle !== "active") {
    return refuse(`the page is not active (${sender.documentLifecycle}); try again once it is shown`);
  }
  // Chromium gives the frame's origin in `sender.origin` (right for about:blank and
  // srcdoc frames too); Firefox has no `origin`, only the frame's URL.
  const origin = webOrigin(sender.origin ?? sender.url);
  if (origin === null) {
    return refuse("only http(s) pages can use the model store (this frame's origin is opaque or not a web origin)");
  }
  // The top frame knows its own origin exactly; a subframe's top-level site is the
  // tab's committed URL (a port belongs to one document, and the browser closes it
  // when that document goes away, so a later navigation of the tab cannot move
  // this port into another partition).
  const top = sender.frameId === 0 ? origin : topSiteOf(sender.tab?.url);
  if (top === null) {
    return refuse("the top-level page of this frame is not an http(s) page the extension can see");
  }
  return { ok: true, partition: { top_site: top, origin } };
}

/** True when `sender` is one of the extension's own pages (popup, or the popup
 *  opened as a tab): the only callers that get a trusted context. */
export function isExtensionPage(sender, extensionId, extensionBaseUrl) {
  return (
    sender?.id === extensionId &&
    typeof sender.url === "string" &&
    typeof extensionBaseUrl === "string" &&
    extensionBaseUrl.length > 0 &&
    sender.url.startsWith(extensionBaseUrl)
  );
}
