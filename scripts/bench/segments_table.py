"""The corpus table of scripts/bench/segments.py: for each model and in total, logical
bytes, file-level dedup (one copy per distinct SHA-256), segment-level physical bytes
(segment files + one encoded recipe per distinct file, inline bytes included) and the
unique tensor bytes (every distinct tensor of the corpus once). Target (issue 15):
physical <= 1.05 x unique."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import onnx
from segments_corpus import Entry, tensor_arrays

from webmodels.store.segments import Recipe, SegmentStore, encode_recipe


@dataclass
class Row:
    group: str
    files: int
    logical: int
    file_level: int
    physical: int
    unique_tensors: int
    structure: int  # physical bytes that are no tensor: graphs, headers, recipes

    @property
    def ratio(self) -> float:
        return self.physical / self.unique_tensors if self.unique_tensors else float("nan")


def sha256_of(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def unique_tensor_hashes(entries: list[Entry]) -> dict[str, int]:
    """Distinct tensors of every ONNX file (external data loaded), by content."""
    seen: dict[str, int] = {}
    for entry in entries:
        if entry.files[0].suffix != ".onnx":
            continue  # safetensors / GGUF files hold the same tensors as their ONNX
        model = onnx.load(str(entry.files[0]))
        for array in tensor_arrays(model):
            data = array.tobytes()
            seen[hashlib.sha256(data).hexdigest()] = len(data)
    return seen


def ingest(store: SegmentStore, entry: Entry) -> list[Recipe]:
    graph = entry.files[0] if len(entry.files) > 1 else None
    recipes = [store.ingest(entry.files[0])]
    recipes += [store.ingest(path, graph=graph) for path in entry.files[1:]]
    return recipes


def table(entries: list[Entry], work: Path) -> list[Row]:
    rows = []
    groups = list(dict.fromkeys(e.group for e in entries))
    for group in [*groups, "all"]:
        chosen = [e for e in entries if group in ("all", e.group)]
        store = SegmentStore(work / f"store-{group}")
        recipes = [r for e in chosen for r in ingest(store, e)]
        files = [p for e in chosen for p in e.files]
        distinct = {sha256_of(p): p.stat().st_size for p in files}
        tensors = unique_tensor_hashes(chosen)
        # the store keeps one recipe per distinct file (table recipes, keyed by SHA-256)
        held_recipes = {sha256_of(p): r for p, r in zip(files, recipes, strict=True)}
        encoded = sum(len(encode_recipe(r)) for r in held_recipes.values())
        physical = store.physical_bytes() + encoded
        held = {s.digest.hex: s.size for r in recipes for s in r.segments}
        rows.append(
            Row(
                group=group,
                files=len(files),
                logical=sum(p.stat().st_size for p in files),
                file_level=sum(distinct.values()),
                physical=physical,
                unique_tensors=sum(tensors.values()),
                structure=physical - sum(size for h, size in held.items() if h in tensors),
            )
        )
        shutil.rmtree(store.root)
    return rows


def print_table(rows: list[Row], entries: list[Entry]) -> None:
    print(f"\ncorpus: {len(entries)} variants")
    for group in dict.fromkeys(e.group for e in entries):
        kinds = ", ".join(e.variant for e in entries if e.group == group)
        print(f"  {group}: {kinds}")
    head = ("model", "files", "logical", "file-level", "segments", "unique", "seg/uniq", "graphs")
    print("\n(MB; segments: physical bytes; unique: distinct tensors; graphs: the")
    print(" physical bytes that are no tensor: graph structure, headers, recipes)")
    print("{:<9} {:>5} {:>9} {:>11} {:>9} {:>8} {:>9} {:>7}".format(*head))
    for r in rows:
        print(
            f"{r.group:<9} {r.files:>5} {r.logical / 1e6:>9.2f} {r.file_level / 1e6:>11.2f} "
            f"{r.physical / 1e6:>9.2f} {r.unique_tensors / 1e6:>8.2f} {r.ratio:>9.3f} "
            f"{r.structure / 1e6:>7.2f}"
        )
