"""Compile-cache outputs kept as segments (with ``[store] segments = true``).

ONNX Runtime saves an optimized graph with its weights in one external-data file. With
segments on, the compile cache stores both through the segmented store instead of as
whole files: the weights file is cut at the tensor offsets its graph names (the capped
wire reader, `store.segments.split.plan`), so every tensor of 4 KiB or more is the
segment named by its own SHA-256 — the very segment the source model (or any other
stored file) holds when the bytes are equal, whatever ONNX Runtime named the tensor.
Only the tensors the optimizer changed (folded constants, re-laid-out weights) take
new disk space.

A cache hit then sends the worker the graph's and the weights' parts rather than
paths (`hit_frame`): the worker rebuilds the small graph and checks its SHA-256, points
each tensor that is a whole segment at that segment's file (hard-linked into its
private folder like a linked model's), and embeds the rest
(`runtime/compiled_relink.py`). No whole copy of the weights is made. Keys, scopes
and what a hit tells a page are those of `compile_cache`, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from webmodels.digest import Digest
from webmodels.store.blobs import PendingBlob
from webmodels.store.segments import Inline, Recipe
from webmodels.store.store import Store


def ingest_outputs(
    store: Store, graph: PendingBlob, weights: PendingBlob | None
) -> dict[Digest, Recipe]:
    """Segments of what the worker saved (before the write transaction); {} when the
    store keeps new files whole."""
    if not store.segmented.enabled:
        return {}
    segments = store.segmented.store
    recipes = {graph.digest: segments.ingest(graph.temp_path)}
    if weights is not None:
        recipes[weights.digest] = segments.ingest(weights.temp_path, graph=graph.temp_path)
    return recipes


def parts_of(store: Store, recipe: Recipe) -> list[Any]:
    """A recipe as the worker reads it (`segment_link`): inline bytes, or [segment
    hex, path, size, offset], the file holding the segment (its own or a pack) and
    where its bytes start there."""
    locate = store.segmented.store.locate
    parts: list[Any] = []
    for part in recipe.parts:
        if isinstance(part, Inline):
            parts.append(part.data)
            continue
        path, offset = locate(part)
        parts.append([part.digest.hex, str(path), part.size, offset])
    return parts


def recipes_of(store: Store, digests: Sequence[Digest]) -> dict[Digest, Recipe] | None:
    """The recipes of a cache entry's blobs when all are kept as segments with all
    their segments on disk; None otherwise (the entry is read from whole files)."""
    found: dict[Digest, Recipe] = {}
    for digest in digests:
        recipe = store.recipe_of(digest)
        if recipe is None or any(not store.segmented.store.has(s) for s in recipe.segments):
            return None
        found[digest] = recipe
    return found


def hit_frame(
    store: Store, graph: Digest, weights: Digest | None, recipes: Mapping[Digest, Recipe]
) -> dict[str, Any]:
    """The ``cached`` field of a ``create`` request for an entry kept as segments."""
    frame: dict[str, Any] = {
        "graph": {"sha256": graph.hex, "size": recipes[graph].size, "path": ""},
        "graph_parts": parts_of(store, recipes[graph]),
        "weights": None,
    }
    if weights is not None:
        frame["weights_parts"] = parts_of(store, recipes[weights])
    return frame
