import assert from "node:assert/strict";
import { test } from "node:test";

import { diskLine } from "../popup/format.js";
import { storedSummary } from "../popup/views.js";

test("the popup says what shared parts saved: stored against on disk", () => {
  const stats = { stored_bytes: 3 * 1024 ** 2, physical_bytes: 1024 ** 2, shared_saved_bytes: 2 * 1024 ** 2 };
  assert.equal(storedSummary(stats), "3.00 MiB stored, 1.00 MiB on disk (2.00 MiB saved by shared parts)");
});

test("nothing shared reads as nothing saved", () => {
  const stats = { stored_bytes: 2048, physical_bytes: 2048, shared_saved_bytes: 0 };
  assert.equal(storedSummary(stats), "2.00 KiB stored, 2.00 KiB on disk (0 B saved by shared parts)");
});

test("bytes a pack holds for no file any more say that gc frees them", () => {
  const stats = { stored_bytes: 3 * 1024 ** 2, physical_bytes: 1024 ** 2, reclaimable_bytes: 512 * 1024 };
  assert.equal(
    storedSummary(stats),
    "3.00 MiB stored, 1.00 MiB on disk (2.00 MiB saved by shared parts; 512 KiB more freed by gc)",
  );
});

test("a host that does not report stored bytes shows no line", () => {
  assert.equal(storedSummary({ physical_bytes: 10 }), null);
  assert.equal(storedSummary(null), null);
});

test("each model kept as segments says what it holds on disk and what it shares", () => {
  const model = { size: 3 * 1024 ** 2, disk: { own_bytes: 1024 ** 2, shared_bytes: 2 * 1024 ** 2 } };
  assert.equal(diskLine(model), "1.00 MiB on disk, 2.00 MiB shared with other files");
  assert.equal(diskLine({ disk: { own_bytes: 4096, shared_bytes: 0 } }), "4.00 KiB on disk, nothing shared");
  assert.equal(diskLine({ size: 10 }), null); // kept whole or pre-installed: no line
});
