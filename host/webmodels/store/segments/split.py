"""`plan` cuts a file into pieces; `split` hashes them into a `Recipe`.

A plan covers every byte of the file once, in order. Tensor spans the container
readers found that are at least `SEGMENT_MIN` bytes become pieces of their own, so the
same tensor is the same segment in every file that holds it; the bytes between them
(headers, graph structure, smaller tensors) stay inline, where the recipe keeps them
compressed: no other file shares them (another opset, external data or a re-export
changes the graph all through), and graph structure compresses 3 to 40 times, far
better than chunks of it ever deduplicated. Only past `INLINE_TOTAL_MAX` inline bytes
in one file are the runs between tensors cut by content-defined chunking. A file the
readers do not recognise, or whose parse fails, is chunked whole (runs shorter than
`INLINE_MAX` inline).
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from webmodels.digest import Digest
from webmodels.store.protowire import WireCaps
from webmodels.store.segments.chunking import cdc_spans
from webmodels.store.segments.gguf_spans import MAGIC, gguf_spans, gguf_spans_of
from webmodels.store.segments.onnx_spans import external_spans, onnx_spans, scan_model
from webmodels.store.segments.recipe import (
    INLINE_MAX,
    INLINE_TOTAL_MAX,
    Inline,
    Part,
    Recipe,
    Segment,
)
from webmodels.store.segments.safetensors_spans import (
    looks_like_safetensors,
    safetensors_spans,
    safetensors_spans_of,
)
from webmodels.store.segments.spans import ContainerInvalid, Span

SEGMENT_MIN = INLINE_MAX
"""The smallest tensor that is a segment of its own (never below `INLINE_MAX`). A
smaller one joins the bytes around it (inline, or content-defined chunks). Each
segment is a file to create on import and to open on reads, but on real models a
larger minimum saved few files (the runs between tensors are chunked anyway) and
lost sharing: 4 KiB is kept (docs/segments.md; scripts/bench/segments.py
``--segment-min`` / ``--alt-segment-min`` measure another)."""


@dataclass(frozen=True, slots=True)
class Piece:
    offset: int
    length: int
    inline: bool


@dataclass(frozen=True, slots=True)
class Plan:
    container: str  # "onnx", "onnx-data", "safetensors", "gguf" or "chunks"
    size: int
    pieces: tuple[Piece, ...]


def plan(path: Path, *, graph: Path | None = None) -> Plan:
    """How to cut the file at ``path``. ``graph``: the ONNX model whose external data
    ``path`` is, so the data file is cut at its tensors' offsets."""
    container, spans = _tensor_spans(path, graph)
    size = path.stat().st_size
    with mapped_file(path, size) as data:
        pieces = _pieces(data, size, spans, parsed=container != "chunks")
    return Plan(container, size, tuple(pieces))


def plan_bytes(data: bytearray) -> Plan:
    """How to cut a file held in memory (`plan` reads it from a path): the same cuts,
    found in the same bytes that are then stored."""
    container, spans = _spans_of(data)
    with memoryview(data) as view:
        pieces = _pieces(view, len(data), spans, parsed=container != "chunks")
    return Plan(container, len(data), tuple(pieces))


def split(path: Path, *, graph: Path | None = None) -> Recipe:
    """The recipe of the file at ``path`` (hashes its segments; stores nothing)."""
    layout = plan(path, graph=graph)
    with mapped_file(path, layout.size) as data:
        return Recipe(tuple(part_of(data, piece) for piece in layout.pieces))


def part_of(data: memoryview, piece: Piece) -> Part:
    chunk = data[piece.offset : piece.offset + piece.length]
    if piece.inline:
        return Inline(bytes(chunk))
    return Segment(Digest(hashlib.sha256(chunk).hexdigest()), piece.length)


@contextlib.contextmanager
def mapped_file(path: Path, size: int) -> Iterator[memoryview]:
    """The file's bytes, mapped read-only (an empty file cannot be mapped)."""
    if size == 0:
        yield memoryview(b"")
        return
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        view = memoryview(m)
        try:
            yield view
        finally:
            view.release()


def _tensor_spans(path: Path, graph: Path | None) -> tuple[str, list[Span]]:
    with path.open("rb") as fh:
        head = fh.read(16)
    try:
        if graph is not None:
            return "onnx-data", external_spans(graph, path)
        if head[:4] == MAGIC:
            return "gguf", gguf_spans(path)
        if looks_like_safetensors(head):
            return "safetensors", safetensors_spans(path)
        return "onnx", onnx_spans(path).inline
    except (ContainerInvalid, OSError, ValueError):
        return "chunks", []  # cut by content alone; see the module docstring


def _spans_of(data: bytearray) -> tuple[str, list[Span]]:
    head = bytes(data[:16])
    try:
        if head[:4] == MAGIC:
            return "gguf", gguf_spans_of(data)
        if looks_like_safetensors(head):
            return "safetensors", safetensors_spans_of(data)
        if not data:
            raise ContainerInvalid("an empty file")
        with memoryview(data) as view:
            return "onnx", scan_model(view, WireCaps()).inline
    except (ContainerInvalid, ValueError):
        return "chunks", []


def _pieces(data: memoryview, size: int, spans: list[Span], *, parsed: bool) -> list[Piece]:
    pieces: list[Piece] = []
    pos = 0
    least = max(SEGMENT_MIN, INLINE_MAX)
    budget = INLINE_TOTAL_MAX if parsed else 0  # inline bytes left for long runs
    for span in [*sorted(s for s in spans if s.length >= least and s.end <= size), None]:
        if span is not None and span.offset < pos:
            continue  # overlaps one already placed (a malformed or odd file)
        end = size if span is None else span.offset
        if end - pos <= budget:
            budget -= end - pos
            pieces.extend([Piece(pos, end - pos, inline=True)] if end > pos else [])
        else:
            pieces.extend(_gap(data, pos, end))
        if span is not None:
            pieces.append(Piece(span.offset, span.length, inline=False))
            pos = span.end
    return pieces


def _gap(data: memoryview, start: int, end: int) -> list[Piece]:
    if end - start < INLINE_MAX:
        return [Piece(start, end - start, inline=True)] if end > start else []
    return [Piece(s.offset, s.length, inline=False) for s in cdc_spans(data, start, end)]
