"""Models of several files pulled in the background (``webmodels pull URL1 URL2
--background``): the set is remembered in the index (a ``settings`` row per model,
``pending-model:<id>``, no schema change) while a download job per file runs in the
detached runner (``webmodels jobs --run``). The runner checks for complete sets when
it starts and after each turn of its loop, and the host after each download it
finishes (a host that took over a file of the set from a runner that died): a set
whose files are all stored gets its manifest saved (manifests/pulling.py
``save_pulled``) and is marked saved, kept a day for ``webmodels jobs`` and the popup to
list its jobs as one model (manifests/job_sets.py). A set whose file failed stays
remembered; pulling the model again resumes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.manifests.pulling import FileSource, save_pulled
from webmodels.manifests.values import Manifest
from webmodels.store.store import Store

PREFIX = "pending-model:"
KEEP_SAVED_S = 24 * 3600  # as finished download jobs

_settling = threading.Lock()  # one settling per process at a time (the host's job threads)

log = logging.getLogger(__name__)


def remember(
    store: Store,
    sources: Sequence[FileSource],
    *,
    name: str | None,
    version: str | None,
    page: bool = False,
) -> str:
    """Record the set; its id (the same set and label: the same id). ``page``: a page's
    load of several files, remembered only so its jobs list as one model (no manifest
    is saved for it; forgotten after a day)."""
    files = [
        {
            "path": s.path,
            "sha256": s.digest.hex,
            "urls": list(s.urls),
            "size": s.size,
            "role": s.role,
        }
        for s in sources
    ]
    found: dict[str, Any] = {"name": name, "version": version, "files": files}
    key = PREFIX + hashlib.sha256(json.dumps(found, sort_keys=True).encode()).hexdigest()[:16]
    if page:
        key += "-page"  # never the id of a pull's set
        found |= {"page": True, "saved_at": time.time()}
    found["remembered_at"] = time.time()  # the newest set a file is in names it
    store.set_setting(key, json.dumps(found, sort_keys=True))
    return key.removeprefix(PREFIX)


def remembered(store: Store) -> list[tuple[str, dict[str, Any]]]:
    """Every remembered set: (its id, ``{name, version, files, saved?}``)."""
    rows = store.index.query(
        "SELECT key, value FROM settings WHERE key >= ? AND key < ?", (PREFIX, PREFIX + "\uffff")
    )
    return [(str(row["key"]).removeprefix(PREFIX), json.loads(row["value"])) for row in rows]


def settle_pending(store: Store) -> list[Manifest]:
    """Save the manifest of every remembered set whose files are all stored."""
    with _settling:
        return _settle(store)


def _settle(store: Store) -> list[Manifest]:
    saved = []
    for set_id, found in remembered(store):
        key = PREFIX + set_id
        if "saved_at" in found:
            if found["saved_at"] < time.time() - KEEP_SAVED_S:
                with store.index.write() as db:
                    db.execute("DELETE FROM settings WHERE key = ?", (key,))
            continue
        sources = [
            FileSource(f["path"], Digest(f["sha256"]), tuple(f["urls"]), f["size"], f["role"])
            for f in found["files"]
        ]
        records = {s.path: store.get(s.digest) for s in sources}
        stored = {path: r for path, r in records.items() if r is not None and r.servable}
        if len(stored) < len(sources):
            continue
        try:
            manifest = save_pulled(
                store, sources, stored, name=found["name"], version=found["version"]
            )
        except HostError as exc:  # e.g. a graph naming a file outside the set
            log.warning("model of %d files not saved: %s", len(sources), exc.message)
            with store.index.write() as db:
                db.execute("DELETE FROM settings WHERE key = ?", (key,))
            continue
        saved.append(manifest)
        marked = {**found, "saved": manifest.digest.hex, "saved_at": time.time()}
        store.set_setting(key, json.dumps(marked, sort_keys=True))
    return saved
