"""Derived forms kept as segments (with ``[store] segments = true``).

A form the host derives (an opset conversion, fp16, int8, q4, the ORT format, the
external-data split) is published through the segmented store, as the compile cache's
outputs are (runtime/compile_segments.py): each file is cut at its tensors before the
write transaction (an ONNX file at each tensor's bytes; the split's data file at the
offsets its graph names), so every tensor equal to one of the source's is the very
segment the source holds. A form then costs only what it changed: the split and an
opset conversion their graph, fp16 its converted tensors. The recipes go to
`store.representations.publish_files` (``recipes=``), which indexes them in the same
transaction as the form's rows and provenance.

The derivation reads its source through the store too: a source kept as segments is
sent to the worker as its parts (inline bytes, or segment files), which the worker
joins in memory and checks against the source's SHA-256 (runtime/segment_link.py,
``assemble``), so no view of the source is written. A source stored whole (or
pre-installed) is sent as its path, as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from webmodels.digest import Digest
from webmodels.runtime.compile_segments import parts_of
from webmodels.store.blobs import PendingBlob
from webmodels.store.segments import Recipe
from webmodels.store.store import Store


def source_ref(store: Store, source: Digest) -> dict[str, Any]:
    """The ``model`` of a ``derive`` request: the source's parts when it is kept as
    segments with all of them on disk, else its path (`Store.locate`)."""
    recipe = store.servable_recipe(source)
    if recipe is not None and all(store.segmented.store.has(s) for s in recipe.segments):
        return {
            "path": "",
            "sha256": source.hex,
            "size": recipe.size,
            "parts": parts_of(store, recipe),
        }
    location = store.locate(source)
    return {"path": str(location.path), "sha256": source.hex, "size": location.size}


def ingest_form(store: Store, files: list[tuple[PendingBlob, Path | None]]) -> dict[Digest, Recipe]:
    """Segments of a checked form's files (before the write transaction), each with
    the graph whose external data it is (None: a file of its own); {} when the store
    keeps new files whole."""
    if not store.segmented.enabled:
        return {}
    segments = store.segmented.store
    return {
        pending.digest: segments.ingest(pending.temp_path, graph=graph) for pending, graph in files
    }
