"""Segments: a stored file kept as a recipe of content-addressed pieces.

This package owns storage below the file. A *recipe* is the ordered list of parts
that rebuild one file byte for byte: each part is either a *segment* (bytes kept once,
named by their SHA-256) or a small *inline* byte string kept in the recipe itself.
`split` cuts known containers at tensor boundaries (ONNX, its external-data files,
safetensors, GGUF), so variants of one model (another opset, an optimized graph,
weights moved to external data, a safetensors export) share every tensor they have
in common; anything else is cut by content-defined chunking. `SegmentStore` keeps
segments on disk (fsync, then rename; idempotent); `reconstruct` / `copy_to` stream a
recipe back without building the file in memory; `verify` re-hashes the whole
reconstruction and each segment.

Where the parsers cut never affects correctness, only how much is shared: every
byte of the file lands in exactly one part, whatever the parse found.

The live store uses it behind `[store] segments = true` (store/segmented.py;
docs/segments.md: what the switch-over still needs).
"""

from webmodels.store.segments.recipe import Inline, Recipe, Segment, decode_recipe, encode_recipe
from webmodels.store.segments.reconstruct import VerifyReport, copy_to, reconstruct, verify
from webmodels.store.segments.segment_store import SegmentStore
from webmodels.store.segments.split import Piece, Plan, plan, split

__all__ = [
    "Inline",
    "Piece",
    "Plan",
    "Recipe",
    "Segment",
    "SegmentStore",
    "VerifyReport",
    "copy_to",
    "decode_recipe",
    "encode_recipe",
    "plan",
    "reconstruct",
    "split",
    "verify",
]
