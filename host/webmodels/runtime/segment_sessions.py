"""The host's side of ONNX Runtime sessions straight from segments.

For a model kept as segments (`store/segmented.py`), the worker loads a graph whose
large initializers are external data naming segment files (`store.segments.onnx_link`),
hard-linked into the session's private folder under their hex names like a model
manifest's files (`model_files.link_files`; the worker's `check_model` refuses any
location that is not one of them). No copy of the weights is made. The rewritten graph
is made by the worker (`segment_link`, op ``link``) when the file is published
(`segment_publish`), else at its first session, and kept under
``<store>/linked/<model sha256>.onnx`` with a ``.json`` naming its SHA-256, size and
segments; it is removed with the model's recipe.

Where the store's segment files cannot be hard-linked into its temp folder (another
file system, no hard links), `linked_model` answers None and the caller uses the
reconstructed view (`Store.locate`).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmodels.digest import Digest
from webmodels.store.blobs import process_alive
from webmodels.store.segmented import LINKED
from webmodels.store.segments import Inline, Recipe
from webmodels.store.store import Store

Call = Callable[[str, Mapping[str, Any]], dict[str, Any]]

_LINKS_WORK: dict[Path, bool] = {}  # store folder -> whether hard links work there


@dataclass(frozen=True, slots=True)
class LinkedModel:
    graph: Path
    sha256: str
    size: int
    segments: Mapping[str, int]  # segment hex -> size, the graph's external locations

    def model_ref(self) -> dict[str, Any]:
        return {"path": str(self.graph), "sha256": self.sha256, "size": self.size}

    def file_refs(self, store: Store) -> dict[str, dict[str, Any]]:
        path_of = store.segmented.store.path_of
        return {
            hex_: {"path": str(path_of(Digest(hex_))), "sha256": hex_, "size": size}
            for hex_, size in self.segments.items()
        }


def session_recipe(store: Store, digest: Digest) -> Recipe | None:
    """The recipe of a stored model a session may load from segments (not a
    pre-installed file, which is read where it lies)."""
    record = store.get(digest)
    if record is None or not record.stored or record.preinstalled_path is not None:
        return None
    return store.recipe_of(digest)


def links_work(store: Store) -> bool:
    """Whether a segment file can be hard-linked into the store's temp folder (where
    the worker's private folders are made): tried once per store folder."""
    root = store.segmented.root
    if root not in _LINKS_WORK:
        _LINKS_WORK[root] = _try_link(store.segmented.store.tmp_dir, store.files.tmp_dir)
    return _LINKS_WORK[root]


def _try_link(source_dir: Path, target_dir: Path) -> bool:
    name = f".{os.getpid()}-{uuid.uuid4().hex}.probe"
    source, target = source_dir / name, target_dir / name
    try:
        source_dir.mkdir(parents=True, exist_ok=True)
        source.write_bytes(b"")
        os.link(source, target)
        target.unlink()
    except OSError:
        return False
    finally:
        source.unlink(missing_ok=True)
    return True


def linked_model(
    store: Store,
    digest: Digest,
    recipe: Recipe,
    call: Call,
    limits: Mapping[str, int],
    *,
    force: bool = False,
) -> LinkedModel | None:
    """The model's graph rewritten to load from its segments (made now by ``call``,
    the worker's op, when not kept yet or ``force``); None where hard links do not
    work."""
    if not links_work(store):
        return None
    folder = store.segmented.root / LINKED
    kept = None if force else _kept(folder, digest)
    if kept is not None:
        return kept
    folder.mkdir(mode=0o700, exist_ok=True)
    _remove_stale(folder)
    temp = folder / f".{os.getpid()}-{uuid.uuid4().hex}.partial"
    path_of = store.segmented.store.path_of
    parts = [
        part.data
        if isinstance(part, Inline)
        else [part.digest.hex, str(path_of(part.digest)), part.size]
        for part in recipe.parts
    ]
    try:
        reply = call(
            "link",
            {
                "parts": parts,
                "size": recipe.size,
                "sha256": digest.hex,
                "out": str(temp),
                "limits": dict(limits),
            },
        )
        data = temp.read_bytes()
        graph = folder / f"{digest.hex}.onnx"
        os.replace(temp, graph)
    finally:
        temp.unlink(missing_ok=True)
    # Only the file's own segments, whatever the worker (which parsed the model) says.
    own = {segment.digest.hex: segment.size for segment in recipe.segments}
    segments = {str(k): own[str(k)] for k in dict(reply["segments"]) if str(k) in own}
    meta = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "segments": segments}
    meta_temp = folder / f".{os.getpid()}-{uuid.uuid4().hex}.json"
    meta_temp.write_text(json.dumps(meta))
    os.replace(meta_temp, folder / f"{digest.hex}.json")
    return LinkedModel(graph, str(meta["sha256"]), len(data), segments)


def _remove_stale(folder: Path) -> None:
    """Temp files of writers that were killed (``.<pid>-<uuid>.partial`` / ``.json``)."""
    for path in [*folder.glob(".*.partial"), *folder.glob(".*.json")]:
        pid = path.name[1:].split("-", 1)[0]
        if not (pid.isdigit() and process_alive(int(pid))):
            path.unlink(missing_ok=True)


def _kept(folder: Path, digest: Digest) -> LinkedModel | None:
    try:
        meta = json.loads((folder / f"{digest.hex}.json").read_text())
        graph = folder / f"{digest.hex}.onnx"
        if graph.stat().st_size != int(meta["size"]):
            return None
        segments = {Digest(str(k)).hex: int(v) for k, v in dict(meta["segments"]).items()}
        return LinkedModel(graph, Digest(str(meta["sha256"])).hex, int(meta["size"]), segments)
    except (OSError, ValueError, KeyError, TypeError):
        return None
