import assert from "node:assert/strict";
import { test } from "node:test";

import { isExtensionPage, partitionFromSender, topSiteOf, webOrigin } from "../shared/partition.js";
import { EXTENSION_BASE, EXTENSION_ID, senderFor } from "./fake-browser.js";

const partitionOf = (sender) => partitionFromSender(sender, EXTENSION_ID);

test("webOrigin serialises http(s) origins as the host does", () => {
  assert.equal(webOrigin("https://A.Example:443/path?q#f"), "https://a.example");
  assert.equal(webOrigin("http://a.test:8080/x"), "http://a.test:8080");
  assert.equal(webOrigin("http://127.0.0.1:8000/"), "http://127.0.0.1:8000");
  assert.equal(webOrigin("http://[::1]:3000/"), "http://[::1]:3000");
  assert.equal(webOrigin("https://bücher.example/"), "https://xn--bcher-kva.example");
  for (const bad of ["null", "data:text/html,x", "file:///etc/passwd", `${EXTENSION_BASE}popup.html`, "about:blank", "", undefined, 7]) {
    assert.equal(webOrigin(bad), null, String(bad));
  }
});

test("the top-level site is the top frame's whole origin (finer than a site, never coarser)", () => {
  assert.equal(topSiteOf("https://www.a.example/page"), "https://www.a.example");
  assert.notEqual(topSiteOf("https://a.co.uk/"), topSiteOf("https://b.co.uk/"));
  assert.equal(topSiteOf("http://localhost:5173/app"), "http://localhost:5173");
});

test("a top frame's partition is its own origin twice, whatever the tab URL says", () => {
  const sender = { ...senderFor({ origin: "https://a.example" }), tab: { id: 1, url: "https://elsewhere.example/" } };
  assert.deepEqual(partitionOf(sender), {
    ok: true,
    partition: { top_site: "https://a.example", origin: "https://a.example" },
  });
});

test("a cross-origin iframe is (top-level site of the tab, its own origin)", () => {
  const sender = senderFor({ origin: "https://b.example", frameId: 3, topUrl: "https://a.example/app?x=1" });
  assert.deepEqual(partitionOf(sender).partition, { top_site: "https://a.example", origin: "https://b.example" });
});

test("Firefox's sender has no origin: the frame's URL gives it", () => {
  const { origin: _, ...sender } = senderFor({ origin: "https://b.example", frameId: 2, topUrl: "https://a.example/" });
  assert.deepEqual(partitionOf(sender).partition, { top_site: "https://a.example", origin: "https://b.example" });
});

test("no partition is trusted for opaque, non-web, inactive or foreign senders", () => {
  const cases = {
    opaque: { ...senderFor({ origin: "https://a.example" }), origin: "null" },
    file: { ...senderFor({ origin: "https://a.example" }), origin: undefined, url: "file:///home/u/x.html" },
    prerendered: { ...senderFor({ origin: "https://a.example" }), documentLifecycle: "prerender" },
    cached: { ...senderFor({ origin: "https://a.example" }), documentLifecycle: "cached" },
    "top not a web page": senderFor({ origin: "https://b.example", frameId: 1, topUrl: "chrome://newtab/" }),
    "no tab": { ...senderFor({ origin: "https://b.example", frameId: 1 }), tab: undefined },
    "another extension": { ...senderFor({ origin: "https://a.example" }), id: "abcdefghijklmnopabcdefghijklmnop" },
    "no sender": undefined,
  };
  for (const [name, sender] of Object.entries(cases)) {
    const result = partitionOf(sender);
    assert.equal(result.ok, false, name);
    assert.equal(result.error.code, "access_denied", name);
  }
});

test("only the extension's own pages are trusted", () => {
  assert.ok(isExtensionPage({ id: EXTENSION_ID, url: `${EXTENSION_BASE}popup/popup.html` }, EXTENSION_ID, EXTENSION_BASE));
  assert.ok(isExtensionPage({ id: EXTENSION_ID, url: `${EXTENSION_BASE}popup/popup.html`, tab: { id: 3 } }, EXTENSION_ID, EXTENSION_BASE));
  const untrusted = [
    senderFor({ origin: "https://a.example" }), // a content script
    { id: EXTENSION_ID, url: `chrome-extension://${EXTENSION_ID}evil/popup.html` },
    { id: "other", url: `${EXTENSION_BASE}popup/popup.html` },
    { id: EXTENSION_ID },
  ];
  for (const sender of untrusted) assert.equal(isExtensionPage(sender, EXTENSION_ID, EXTENSION_BASE), false);
  assert.equal(isExtensionPage({ id: EXTENSION_ID, url: "x" }, EXTENSION_ID, ""), false);
});
