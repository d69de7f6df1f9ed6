"""A page's download of a model of several files is one entry of the popup's Downloads,
in a real Chromium with the real extension and host: while the files come from a slow
loopback server the popup shows one group (the model, its file count) with each file's
own progress under it; once they are stored the entry leaves Downloads and the popup
lists the model's files. Every step waits on what the popup shows, never on a sleep:
the server holds each file part-way (a stall) until the popup has shown that, then
restarts on the same port, and the host resumes each file with an HTTP range. A set
whose one file fails reaches the page's code naming that file by the page's own key."""

from __future__ import annotations

import hashlib
import os
import re
import time
from typing import Any

import pytest

from e2e.test_page_api import Browser, shared_browser
from e2e.test_popup import POPUP_SIZE, POPUP_URL
from support.httpserver import Fault, ModelServer

pytestmark = pytest.mark.e2e
__all__ = ["shared_browser"]  # a fixture shared with test_page_api

SIZE = 1 << 20
HELD_AT = SIZE // 4  # each file stalls here until the popup has shown it
WAIT_MS = 60_000

START = """(files) => {
  window.setLoad = webmodels.load({ files }).then(
    (model) => ({ files: Object.keys(model.files).sort() }),
    (error) => ({ error: String(error.name) + " " + String(error.message) }),
  );
}"""

FAIL = """async (files) => {
  try { await webmodels.load({ files }); return null; }
  catch (error) { return { name: error.name, message: error.message, details: error.details }; }
}"""

# Each file of the group, as the popup shows it: path → its progress text.
FILES_SHOWN = """(paths) => {
  const group = [...document.querySelectorAll("#job-list li.model-job")].find((li) =>
    paths.every((p) => li.querySelector(`li.job-file[data-path="${p}"]`)));
  if (!group) return null;
  const text = (p) => group.querySelector(`li.job-file[data-path="${p}"] .job-source`).textContent;
  return {
    count: group.querySelector(".row .job-source").textContent,
    files: Object.fromEntries(paths.map((p) => [p, text(p)])),
  };
}"""
# Every file of the group shown part-way: its amount and a percent of 1 to 99.
PARTIAL = r" of .* · ([1-9]\d?)%$"
HELD = (
    "([paths, pattern]) => { const shown = ("
    + FILES_SHOWN
    + ")(paths); const partial = new RegExp(pattern);"
    + " return shown && Object.values(shown.files).every((t) => partial.test(t)) && shown; }"
)
GONE = "(paths) => !(" + FILES_SHOWN + ")(paths)"
LISTED_OR_SEARCH = """(sha) =>
  document.querySelector(`#model-list li[data-sha256="${sha}"]`) ||
  !document.getElementById("model-search").hidden"""


def test_the_popup_shows_a_pages_set_download_as_one_group_then_the_model(
    shared_browser: Browser,
) -> None:
    started = time.perf_counter()
    tag = os.urandom(4).hex()  # this run's own file names, to find its group
    paths = [f"shards-{tag}/params_shard_{n}.bin" for n in range(3)]
    data = {path: os.urandom(SIZE) for path in paths}
    with ModelServer() as server:
        files: dict[str, Any] = {}
        for n, path in enumerate(paths):
            url = server.add(f"/s{n}.bin", data[path])
            # Held at a quarter (any retry too) until the popup has shown it.
            held = Fault(kind="stall", after_bytes=HELD_AT, seconds=300, times=None)
            server.fault(f"/s{n}.bin", held)
            files[path] = {
                "sha256": hashlib.sha256(data[path]).hexdigest(),
                "url": url,
                "size": SIZE,
            }
        popup = shared_browser.context.new_page()
        popup.set_viewport_size(POPUP_SIZE)
        popup.goto(POPUP_URL)
        page = shared_browser.open("a")
        page.evaluate(START, files)

        # One group: the model's three files, each with its own progress, held part-way.
        partial = re.compile(PARTIAL)
        shown = popup.wait_for_function(HELD, arg=[paths, PARTIAL], timeout=WAIT_MS).json_value()
        assert shown["count"] == "3 files"
        assert all(partial.search(text) for text in shown["files"].values()), shown
        assert popup.locator("#job-list li.model-job").filter(has_text=paths[0]).count() == 1

        server.clear_faults()
        server.stop()  # the held connections close; the host resumes each file
        server.start()  # on the same port, from where each file stopped
        result = page.evaluate("() => window.setLoad")
        # A set whose one file has other bytes than its hash: the page's error names
        # that file by the page's own key (its input), with the code's fixed text.
        wrong = {"sha256": "ab" * 32, "url": server.add("/wrong.bin", os.urandom(1000))}
        failed = page.evaluate(FAIL, {paths[0]: files[paths[0]], f"wrong-{tag}.bin": wrong})
    assert failed["details"] == {"file": f"wrong-{tag}.bin"}, failed
    assert result == {"files": sorted(paths)}, result
    ranged = [r for r in server.requests if r.range]
    assert len(ranged) >= len(paths), "each file resumed, not fetched again"

    # Finished: the group leaves Downloads and the popup lists the model's files.
    popup.wait_for_function(GONE, arg=paths, timeout=WAIT_MS)
    for path in paths:
        sha = files[path]["sha256"]
        # Listed on the first page, or (a store of many files) found by its SHA-256.
        popup.wait_for_function(LISTED_OR_SEARCH, arg=sha, timeout=WAIT_MS)
        card = popup.locator(f'#model-list li[data-sha256="{sha}"]')
        if not card.count():
            popup.locator("#model-search").fill(sha[:16])
        card.wait_for(timeout=WAIT_MS)
    print(f"\ntest {time.perf_counter() - started:.1f} s")
