"""navigator.crossOriginStorage against the spec's IDL, in real Chromium with the real
extension: in a window and, through the worker client, in a dedicated worker.

The IDL is a snapshot kept in tests/e2e/fixtures/cross-origin-storage.idl (its source
and date are in its header), parsed with webidl2 as published on npm (fetched at test
time into .cache/npm/). Every method the IDL declares must exist and behave alike (a
library feature-detects the name it calls, and silently falls back to per-site storage
when it is missing), every hash and option member must be honoured, errors must have
the spec's names, and the attribute must be [SameObject].
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from e2e.test_page_api import Browser, shared_browser
from support.npm import npm_package, skip_or_fail

pytestmark = pytest.mark.e2e
__all__ = ["shared_browser"]  # a fixture shared with test_page_api

IDL = Path(__file__).parent / "fixtures" / "cross-origin-storage.idl"
WEBIDL2 = "webidl2@24.5.0"
PARSE = """
const webidl2 = require(process.argv[1]);
const tree = webidl2.parse(require("fs").readFileSync(process.argv[2], "utf8"));
const problems = webidl2.validate(tree).map((e) => e.message);
const find = (type, name) => tree.find((d) => d.type === type && d.name === name);
const manager = find("interface", "CrossOriginStorageManager");
const operations = manager.members.filter((m) => m.type === "operation");
const dictionary = (op, i) => find("dictionary", op.arguments[i].idlType.idlType);
const mixin = find("interface mixin", "NavigatorCrossOriginStorage");
const attribute = mixin.members.find((m) => m.name === "crossOriginStorage");
console.log(JSON.stringify({
  problems,
  methods: operations.map((op) => op.name),
  requiredArguments: operations.map((op) => op.arguments.filter((a) => !a.optional).length),
  hashMembers: dictionary(operations[0], 0).members.filter((m) => m.required).map((m) => m.name),
  optionMembers: dictionary(operations[0], 1).members.map((m) => m.name),
  attributeExtAttrs: attribute.extAttrs.map((e) => e.name),
  includedBy: tree.filter((d) => d.type === "includes" && d.includes === mixin.name)
    .map((d) => d.target),
}));
"""

RUN_WORKER = """(spec) => new Promise((resolve) => {
    const worker = new Worker("cos-idl-worker.js", { name: webmodels.workerScript });
    webmodels.connectWorker(worker);
    worker.onmessage = (event) => resolve(event.data);
    worker.postMessage(spec);
})"""


def parsed_idl() -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        skip_or_fail("node is missing: it runs webidl2 to parse the spec's IDL")
    parser = npm_package(WEBIDL2) / "dist" / "webidl2.js"
    done = subprocess.run(
        [str(node), "-e", PARSE, str(parser), str(IDL)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    spec: dict[str, Any] = json.loads(done.stdout)
    return spec


def check_surface(where: str, spec: dict[str, Any], got: dict[str, Any]) -> None:
    assert "failed" not in got, (where, got)
    assert got["attributeOn"] and got["sameObject"], (where, "navigator.crossOriginStorage")
    for method, required in zip(spec["methods"], spec["requiredArguments"], strict=True):
        seen = got["methods"][method]
        context = (where, method, seen)
        assert seen["type"] == "function", context
        assert "failed" not in seen, context
        assert seen["length"] == required, context
        # Hash members: a miss is NotFoundError (create absent or false); a malformed
        # value or dictionary, or a missing required member, is TypeError; another
        # algorithm is NotSupportedError.
        for case in ("lookupAbsent", "createFalseAbsent"):
            assert seen[case] == {"ok": False, "error": "NotFoundError", "isDOMException": True}
        assert seen["otherAlgorithm"]["error"] == "NotSupportedError", context
        assert seen["otherAlgorithm"]["isDOMException"], context
        for case in ("badValue", "notADictionary"):
            assert seen[case]["error"] == "TypeError", context
        assert sorted(seen["missingMember"]) == sorted(spec["hashMembers"]), context
        for outcome in seen["missingMember"].values():
            assert outcome["error"] == "TypeError", context
        # Option members: create gives a writable handle named by the hash; origins is
        # accepted as a string and as a list.
        assert sorted(seen["exercisedOptions"]) == sorted(spec["optionMembers"]), context
        assert seen["created"] == {"kind": "file", "name": seen["storedSha256"]}, context
        assert seen["readBack"] is True, context
        assert seen["originsList"]["ok"] is True, context


def test_the_page_visible_surface_follows_the_spec_idl_in_windows_and_workers(
    shared_browser: Browser,
) -> None:
    started = time.monotonic()
    spec = parsed_idl()
    assert spec["problems"] == []
    assert {"getFileHandle", "requestFileHandle"} <= set(spec["methods"])
    assert "SameObject" in spec["attributeExtAttrs"]
    assert sorted(spec["includedBy"]) == ["Navigator", "WorkerNavigator"]
    page = shared_browser.open("a")
    page.add_script_tag(url=f"{shared_browser.origin('a')}/cos-idl-probe.js")

    in_window = page.evaluate("(spec) => self.cosIdlProbe(spec)", spec)
    in_worker = page.evaluate(RUN_WORKER, spec)

    check_surface("window", spec, in_window)
    check_surface("worker", spec, in_worker)
    # What either stored is this site's, as if the page had stored it.
    me = [{"top_site": shared_browser.origin("a"), "origin": shared_browser.origin("a")}]
    for got in (in_window, in_worker):
        for seen in got["methods"].values():
            assert shared_browser.sites_of(seen["storedSha256"]) == me
    print(f"IDL surface test: {time.monotonic() - started:.1f} s")
