"""The host's side of ONNX Runtime sessions straight from segments.

For a model kept as segments (`store/segmented.py`), the worker loads a graph whose
large initializers are external data naming the files that hold its segments
(`store.segments.onnx_link`): a segment's own file under its hex name, or the pack
file holding it under the pack's name, at the segment's offset there. Those files are
hard-linked into the session's private folder like a model manifest's files
(`model_files.link_files`; the worker's `check_model` refuses any location that is not
one of them, and any offset and length past the end of its file). No copy of the
weights is made. The rewritten graph is made by the worker (`segment_link`, op
``link``) when the file is published (`segment_publish`), else at its first session,
and kept under ``<store>/linked/<model sha256>.onnx`` with a ``.json`` naming its
SHA-256, size, segments and where each segment lay when the graph was written
(``places``); it is removed with the model's recipe. A kept graph whose segments lie
elsewhere now (quarantined out of a pack, stored again into another) is written
again before a session uses it: it would read other bytes.

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
from webmodels.errors import HostError
from webmodels.runtime.compile_segments import parts_of
from webmodels.store.blobs import process_alive
from webmodels.store.segmented import LINKED
from webmodels.store.segments import Recipe
from webmodels.store.store import Store

Call = Callable[[str, Mapping[str, Any]], dict[str, Any]]
Place = tuple[str | None, int]  # (pack name, offset there); (None, 0): its own file

_LINKS_WORK: dict[Path, bool] = {}  # store folder -> whether hard links work there


@dataclass(frozen=True, slots=True)
class LinkedModel:
    graph: Path
    sha256: str
    size: int
    segments: Mapping[str, int]  # segment hex -> size, the graph's external data
    places: Mapping[str, Place]  # segment hex -> where the graph reads it

    def model_ref(self) -> dict[str, Any]:
        return {"path": str(self.graph), "sha256": self.sha256, "size": self.size}

    def file_refs(self, store: Store) -> dict[str, dict[str, Any]]:
        """Each file the graph names, once, under its location: a segment's own file
        (its size and SHA-256), or a pack (no SHA-256 of its own; its whole size, which
        the worker checks the file still has and the graph's offsets lie within)."""
        segments = store.segmented.store
        refs: dict[str, dict[str, Any]] = {}
        for hex_, size in self.segments.items():
            pack, _ = self.places.get(hex_, (None, 0))
            if pack is None:
                path = segments.path_of(Digest(hex_))
                refs[hex_] = {"path": str(path), "sha256": hex_, "size": size}
            elif pack not in refs:
                path = segments.pack_path(pack)
                try:
                    whole = path.stat().st_size
                except FileNotFoundError as exc:
                    raise HostError("not_found", "a segment of the model was removed") from exc
                refs[pack] = {"path": str(path), "sha256": None, "size": whole}
        return refs


def places_of(recipe: Recipe) -> dict[str, Place]:
    """Where each segment of ``recipe`` lies (as its recipe was located)."""
    return {s.digest.hex: (s.pack, s.offset if s.pack is not None else 0) for s in recipe.segments}


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
    places = places_of(recipe)
    kept = None if force else _kept(folder, digest, places)
    if kept is not None:
        return kept
    folder.mkdir(mode=0o700, exist_ok=True)
    _remove_stale(folder)
    temp = folder / f".{os.getpid()}-{uuid.uuid4().hex}.partial"
    try:
        reply = call(
            "link",
            {
                "parts": parts_of(store, recipe),
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
    where = {hex_: places[hex_] for hex_ in segments}
    sha256 = hashlib.sha256(data).hexdigest()
    meta = {"sha256": sha256, "size": len(data), "segments": segments, "places": where}
    meta_temp = folder / f".{os.getpid()}-{uuid.uuid4().hex}.json"
    meta_temp.write_text(json.dumps(meta))
    os.replace(meta_temp, folder / f"{digest.hex}.json")
    return LinkedModel(graph, sha256, len(data), segments, where)


def _remove_stale(folder: Path) -> None:
    """Temp files of writers that were killed (``.<pid>-<uuid>.partial`` / ``.json``)."""
    for path in [*folder.glob(".*.partial"), *folder.glob(".*.json")]:
        pid = path.name[1:].split("-", 1)[0]
        if not (pid.isdigit() and process_alive(int(pid))):
            path.unlink(missing_ok=True)


def _kept(folder: Path, digest: Digest, now: Mapping[str, Place]) -> LinkedModel | None:
    """The kept graph, unless it is missing, cut short, or names a segment where it no
    longer lies (``now``: where the recipe's segments lie). A graph kept before pack
    files names every segment's own file."""
    try:
        meta = json.loads((folder / f"{digest.hex}.json").read_text())
        graph = folder / f"{digest.hex}.onnx"
        if graph.stat().st_size != int(meta["size"]):
            return None
        segments = {Digest(str(k)).hex: int(v) for k, v in dict(meta["segments"]).items()}
        kept = dict(meta.get("places") or {})
        places: dict[str, Place] = {}
        for hex_ in segments:
            pack, offset = kept.get(hex_) or (None, 0)
            places[hex_] = (None if pack is None else str(pack), int(offset))
            if now.get(hex_) != places[hex_]:
                return None
        sha256 = Digest(str(meta["sha256"])).hex
        return LinkedModel(graph, sha256, int(meta["size"]), segments, places)
    except (OSError, ValueError, KeyError, TypeError):
        return None
