"""Segments: what storing files as tensor-boundary segments saves, and what it costs,
on a corpus of real model variants (the models of docs/models.md, from PyPI wheels).

Each base model is stored as the variants a user meets in practice: the file as
shipped; re-saved by ``onnx``; with its weights as external data (graph + data file);
converted to another opset by ``onnx.version_converter`` (where it converts); optimized
by ONNX Runtime (``SessionOptions.optimized_model_filepath``, basic level); and its
tensors as safetensors and as a GGUF-shaped file. silero-vad's six sibling exports and
the classifier shipped in two OCR wheels are stored as shipped.

Printed per model and in total: logical bytes; file-level dedup (today's store: one
copy per distinct SHA-256); segment-level physical bytes (segment files + encoded
recipes, one per distinct file as in the store, inline bytes included, compressed);
unique tensor bytes (every distinct tensor of the corpus once). Target (issue 15):
physical <= 1.05 x unique. Then speeds in the same run: `SegmentStore.ingest` and
`split` (hash only) against today's import path (copy, hash, fsync one file),
`copy_to` / `reconstruct` against a plain file copy, and ONNX Runtime session
creation from hard-linked segments against the whole file (segments_sessions.py).

The corpus lives in a temp folder, removed at the end (--keep keeps it); wheels are
cached in .cache/wheels (git-ignored), downloaded with ``pip download --no-deps``.

The summary at the end gives, from the same run, the ratios the issue's acceptance
names: import through the live store (segments' time over today's, target <= 1.5),
reads as the loopback fast path sends them, engine level into a socketpair (segments'
MB/s over today's, >= 0.8; --page: the fast path to a page in Chromium), and
session creation (segments' time over the whole file's, <= 1.1); see
segments_store.py.

Usage: .venv/bin/python scripts/bench/segments.py [--models magika,silero,...]
       [--rounds 3] [--keep] [--json PATH] [--speeds-only] [--store-only]
       [--table] [--segment-min BYTES] [--alt-segment-min BYTES] [--alt-in-turn] [--page]

--segment-min sets the smallest tensor stored as a segment of its own for this run
(the store's default otherwise), --table prints the corpus table with --store-only
too, so the time a larger minimum saves and the sharing it costs show in one run.
--alt-in-turn adds a third store whose one-pass imports run their steps one after
another instead of overlapped on two threads (store/importing.py). --page also reads
every corpus file whole via the fast path to a page in headless Chromium, from a
whole-file host and a segments host (segments_page.py, at least 5 rounds).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from segments_corpus import MODELS, Entry, build_corpus  # noqa: E402
from segments_page import PageFigures, page_figures, print_page_figures  # noqa: E402
from segments_sessions import SessionFigures, session_figures  # noqa: E402
from segments_store import (  # noqa: E402
    Alt,
    StoreFigures,
    in_turn,
    print_store_figures,
    store_figures,
)
from segments_table import Row, print_table, table  # noqa: E402

from webmodels.digest import Digest  # noqa: E402
from webmodels.store.segments import (  # noqa: E402
    SegmentStore,
    copy_to,
    reconstruct,
    split,
)

# the module, not the function the package exports under the same name
split_module = importlib.import_module("webmodels.store.segments.split")


# -- measuring -----------------------------------------------------------------------


def best_of(rounds: int, action: Callable[[], object], setup: Callable[[], None]) -> float:
    """The quickest of ``rounds`` runs of ``action``, each after an untimed ``setup``."""
    times = []
    for _ in range(rounds):
        setup()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def import_today(files: list[Path], into: Path) -> None:
    """Today's import of a whole file: copy while hashing, fsync, rename."""
    for i, path in enumerate(files):
        temp, hasher = into / f"{i}.partial", hashlib.sha256()
        with path.open("rb") as src, temp.open("wb") as out:
            while block := src.read(1 << 20):
                hasher.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        temp.replace(into / hasher.hexdigest())


class FsyncEach(SegmentStore):
    """Ingest as it was before one flush per batch: an fsync per segment file and per
    shard folder touched, and a held segment replaced by the new copy (the figure to
    compare with)."""

    def make_durable(self, temps: list[Path]) -> None:
        for temp in temps:
            fd = os.open(temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _publish(self, temp: Path, digest: Digest, size: int) -> Path:
        final = self.path_of(digest)
        os.replace(temp, final)  # over a held copy too
        return final.parent

    def make_renames_durable(self, folders: set[Path]) -> None:
        for folder in sorted(folders):
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def speeds(entries: list[Entry], work: Path, rounds: int) -> dict[str, float]:
    files = [p for e in entries for p in e.files]
    graphs = {p: e.files[0] for e in entries for p in e.files[1:]}
    total = sum(p.stat().st_size for p in files) / 1e6
    figures: dict[str, float] = {}

    today, segs = work / "today", work / "segs"

    def fresh(*folders: Path) -> Callable[[], None]:
        def setup() -> None:
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()

        return setup

    def nothing() -> None:
        pass

    figures["import today (copy+hash+fsync)"] = total / best_of(
        rounds, lambda: import_today(files, today), fresh(today)
    )
    stores: dict[str, SegmentStore] = {}

    def fresh_store(name: str, kind: type[SegmentStore]) -> Callable[[], None]:
        def setup() -> None:
            fresh(segs)()
            stores[name] = kind(segs)
            stores[name].ensure()  # once in a store's life: its folders

        return setup

    for _ in range(rounds):  # alternating, so a change of load hits both alike
        for name, kind in (
            ("segments ingest, before", FsyncEach),
            ("segments ingest", SegmentStore),
        ):
            seconds = best_of(
                1,
                lambda name=name: [stores[name].ingest(p, graph=graphs.get(p)) for p in files],
                fresh_store(name, kind),
            )
            figures[name] = max(figures.get(name, 0.0), total / seconds)
    figures["segments split (hash only)"] = total / best_of(
        rounds, lambda: [split(p, graph=graphs.get(p)) for p in files], nothing
    )
    store = SegmentStore(work / "read-store")
    recipes = [store.ingest(p, graph=graphs.get(p)) for p in files]
    out = work / "out.bin"

    def plain_copy() -> None:
        for path in files:
            shutil.copyfile(path, out)

    def segment_copy() -> None:
        for recipe in recipes:
            with out.open("wb") as fh:
                copy_to(store, recipe, fh.fileno())

    def segment_stream() -> None:
        for recipe in recipes:
            for _block in reconstruct(store, recipe):
                pass

    def file_stream() -> None:
        for path in files:
            with path.open("rb") as fh:
                while fh.read(1 << 20):
                    pass

    figures["read: plain file copy"] = total / best_of(rounds, plain_copy, nothing)
    figures["read: segments copy_to"] = total / best_of(rounds, segment_copy, nothing)
    figures["read: whole file, 1 MiB blocks"] = total / best_of(rounds, file_stream, nothing)
    figures["read: segments reconstruct"] = total / best_of(rounds, segment_stream, nothing)
    return figures


def sessions(entries: list[Entry], work: Path) -> list[SessionFigures]:
    """Each model as shipped: ONNX Runtime sessions from its segments vs its file."""
    store = SegmentStore(work / "session-store")
    shipped = [e for e in entries if e.variant == "shipped"]
    for entry in shipped:
        store.ingest(entry.files[0])
    return [
        session_figures(e.group, store, e.files[0], work / "sessions" / e.group) for e in shipped
    ]


def speed_figures(entries: list[Entry], work: Path, rounds: int) -> dict[str, float]:
    figures = speeds(entries, work, rounds)
    today = figures["import today (copy+hash+fsync)"]
    figures["ingest vs import, time"] = today / figures["segments ingest"]
    figures["ingest before vs import, time"] = today / figures["segments ingest, before"]
    print(f"\nspeeds (MB/s, best of {rounds}, same run, page cache warm):")
    for name, value in figures.items():
        print(f"  {name:<34} {value:>8.0f}")
    return figures


def print_sessions(created: list[SessionFigures]) -> None:
    print("\nsession creation, median of 5 (ms): whole file vs graph + hard-linked segments")
    for c in created:
        print(
            f"  {c.model:<9} {c.whole_file_ms:>7.1f} {c.segments_ms:>7.1f} "
            f"({c.segments_ms / c.whole_file_ms:.2f}x, {c.tensors_linked} tensors linked, "
            f"same outputs: {c.same_outputs})"
        )


def print_summary(
    live: StoreFigures, created: list[SessionFigures], page: PageFigures | None = None
) -> None:
    print("\nsummary, segments vs today's whole-file store, same run:")
    print(f"  import time ratio  {live.import_ratio:.2f}  (target <= 1.5)")
    print(f"  read MB/s ratio    {live.read_ratio:.2f}  engine (socketpair), page cache warm")
    print(f"  read MB/s ratio    {live.read_cold_ratio:.2f}  engine (socketpair), files not cached")
    if page is not None:
        print(f"  read MB/s ratio    {page.ratio:.2f}  fast path to a page (Chromium) (>= 0.8)")
    if created:
        whole = sum(c.whole_file_ms for c in created)
        ratio = sum(c.segments_ms for c in created) / whole
        print(f"  session create     {ratio:.2f}  (all models' medians summed; target <= 1.1)")


def alt_of(args: argparse.Namespace) -> Alt | None:
    """The third store of the live rounds, if asked for: one setting changed."""

    @contextlib.contextmanager
    def setting(module: object, name: str, value: object) -> Iterator[None]:
        old = getattr(module, name)
        setattr(module, name, value)
        try:
            yield
        finally:
            setattr(module, name, old)

    if args.alt_in_turn:
        return "the import's steps in turn (not overlapped)", in_turn
    if args.alt_segment_min is not None:
        n = args.alt_segment_min
        return f"segment minimum {n}", lambda: setting(split_module, "SEGMENT_MIN", n)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the corpus folder")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--speeds-only", action="store_true", help="skip the table and sessions")
    parser.add_argument(
        "--store-only", action="store_true", help="only the live store's import/read ratios"
    )
    parser.add_argument("--table", action="store_true", help="the corpus table, --store-only too")
    parser.add_argument("--segment-min", type=int, help="smallest tensor kept as a segment")
    parser.add_argument("--alt-segment-min", type=int, help="a third store: this minimum")
    parser.add_argument(
        "--alt-in-turn", action="store_true", help="a third store: import steps not overlapped"
    )
    parser.add_argument("--page", action="store_true", help="reads in Chromium: segments_page.py")
    args = parser.parse_args()
    if args.segment_min is not None:
        split_module.SEGMENT_MIN = args.segment_min
    print(f"segment minimum: {split_module.SEGMENT_MIN} bytes")
    work = Path(tempfile.mkdtemp(prefix="webmodels-segments-"))
    try:
        entries = build_corpus(args.models.split(","), work / "corpus")
        files = [p for e in entries for p in e.files]
        raw = {p for e in entries if len(e.files) > 1 for p in e.files}
        raw |= {p for p in files if p.suffix != ".onnx"}
        live = store_figures(files, raw, work / "live", max(args.rounds, 2), alt_of(args))
        print_store_figures(live)
        page = page_figures(files, work / "page", max(args.rounds, 5)) if args.page else None
        if page is not None:
            print_page_figures(page)
        rows: list[Row] = []
        figures: dict[str, float] = {}
        created: list[SessionFigures] = []
        if args.table or not (args.store_only or args.speeds_only):
            rows = table(entries, work)
            print_table(rows, entries)
        if not args.store_only:
            figures = speed_figures(entries, work, args.rounds)
            created = [] if args.speeds_only else sessions(entries, work)
            print_sessions(created)
        print_summary(live, created, page)
        if args.json:
            payload = {
                "live_store": asdict(live),
                "rows": [asdict(r) for r in rows],
                "speeds_mb_s": figures,
                "sessions": [asdict(c) for c in created],
                "page_read": asdict(page) if page else None,
            }
            args.json.write_text(json.dumps(payload, indent=2))
    finally:
        if args.keep:
            print(f"corpus kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
