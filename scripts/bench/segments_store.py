"""Import and read through the live store, for scripts/bench/segments.py: the store
with ``[store] segments = true`` against the whole-file store of today, same files,
same run, alternating rounds (a change of load hits both alike).

* import: ``Store.import_file`` of every corpus file into a fresh store (made, and
  its folders created, before the clock starts: a store does that once in its life),
  after an ``os.sync()``: each import starts with nothing of the last round's left to
  write (removing the last round's store left dirty metadata, which the segments'
  ``syncfs`` flushed on the import's clock and a whole file's ``fsync`` mostly did
  not: 1.0 to 2.2 s against a steady 0.7 s for the same import, first rounds worst).
  Graphs whose weights are external data, and the data files, are imported raw.
* read: every stored file sent whole through a socket as the loopback fast path
  sends it to a page (``socket.sendfile`` of the blob; of each segment, inline bytes
  as they are, ``SegmentedFiles.send_parts``), drained by a reader thread. Each store
  is read twice a round, both layouts in the same cache state: *cold*, after every
  file of the store was flushed and dropped from the page cache
  (``POSIX_FADV_DONTNEED``), then *warm*, the same bytes again. (Read once right
  after the import, as before, the whole file was all in the cache and the segments
  partly not: the import's writeback hint drops pages already written back.)

``alt`` adds a third store to the rounds: segments again, imported inside a context
that changes one setting (scripts/bench/segments.py: another segment minimum), so a
change is measured against the code as it is in the same run.

Ratios are segments / today for time (import) and today / segments for time of reads
(so a read ratio is segments' MB/s over today's). Targets (issue 15): import <= 1.5,
read >= 0.8.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from webmodels.store import importing
from webmodels.store.segments import reaper, segment_store
from webmodels.store.store import Store


@dataclass(frozen=True)
class StoreFigures:
    rounds: int
    megabytes: float
    import_today_s: list[float]
    import_segments_s: list[float]
    read_today_s: list[float]
    read_segments_s: list[float]
    alt_name: str = ""
    import_alt_s: list[float] = field(default_factory=list)
    read_alt_s: list[float] = field(default_factory=list)
    read_cold_today_s: list[float] = field(default_factory=list)
    read_cold_segments_s: list[float] = field(default_factory=list)
    disk_today: int = 0  # bytes of blocks the store's files take (index aside)
    disk_segments: int = 0

    @property
    def import_ratio(self) -> float:
        """Segments' import time over today's (medians of the alternating rounds)."""
        return statistics.median(self.import_segments_s) / statistics.median(self.import_today_s)

    @property
    def read_ratio(self) -> float:
        """Segments' read MB/s over today's (medians), page cache warm."""
        return statistics.median(self.read_today_s) / statistics.median(self.read_segments_s)

    @property
    def read_cold_ratio(self) -> float:
        """The same, every file of both stores dropped from the page cache first."""
        today, segs = self.read_cold_today_s, self.read_cold_segments_s
        return statistics.median(today) / statistics.median(segs)


Alt = tuple[str, Callable[[], AbstractContextManager[object]]]


def store_figures(
    files: list[Path], raw: set[Path], work: Path, rounds: int, alt: Alt | None = None
) -> StoreFigures:
    work.mkdir(parents=True, exist_ok=True)
    total = sum(p.stat().st_size for p in files) / 1e6
    kinds = ["today", "segments", *(["alt"] if alt else [])]
    imports: dict[str, list[float]] = {k: [] for k in kinds}
    reads: dict[str, list[float]] = {k: [] for k in kinds}
    cold: dict[str, list[float]] = {k: [] for k in kinds}
    for round_ in range(rounds):
        order = kinds[round_ % len(kinds) :] + kinds[: round_ % len(kinds)]
        if round_ % 2:
            order.reverse()
        stores: dict[str, Store] = {}
        for kind in order:
            store = _fresh_store(work / f"store-{kind}", kind != "today")
            setting = alt[1]() if alt and kind == "alt" else nullcontext()
            with setting:
                imports[kind].append(_timed(lambda store=store: _import_all(store, files, raw)))
            stores[kind] = store
        for kind in order:
            _drop_cached(stores[kind])
            cold[kind].append(_timed(lambda store=stores[kind]: _read_all(store)))
            reads[kind].append(_timed(lambda store=stores[kind]: _read_all(store)))
        if round_ == 0:
            disk = {kind: _disk_blocks(store.root) for kind, store in stores.items()}
        for store in stores.values():
            store.close()
    return StoreFigures(
        rounds,
        total,
        imports["today"],
        imports["segments"],
        reads["today"],
        reads["segments"],
        alt[0] if alt else "",
        imports.get("alt", []),
        reads.get("alt", []),
        cold["today"],
        cold["segments"],
        disk["today"],
        disk["segments"],
    )


def print_store_figures(f: StoreFigures) -> None:
    def show(name: str, today: list[float], segs: list[float], ratio: float) -> None:
        print(
            f"  {name:<7} today {f.megabytes / statistics.median(today):>7.0f} MB/s, "
            f"segments {f.megabytes / statistics.median(segs):>7.0f} MB/s, ratio {ratio:.2f}"
        )

    print(f"\nlive store, {f.megabytes:.1f} MB, median of {f.rounds} alternating rounds:")
    show("import", f.import_today_s, f.import_segments_s, f.import_ratio)
    print("          (import ratio: segments' time / today's; target <= 1.5)")
    show("read", f.read_today_s, f.read_segments_s, f.read_ratio)
    print("          (page cache warm; read ratio: segments' MB/s / today's; target >= 0.8)")
    show("read", f.read_cold_today_s, f.read_cold_segments_s, f.read_cold_ratio)
    print("          (cold: every file of both stores dropped from the page cache first)")
    print(
        f"  on disk today {f.disk_today / 1e6:7.2f} MB, segments {f.disk_segments / 1e6:7.2f} MB"
        " (blocks of the store's files, the index aside; duplicates' removal awaited)"
    )
    if f.alt_name:
        print(f"  segments with {f.alt_name}, same rounds:")
        imp = statistics.median(f.import_alt_s) / statistics.median(f.import_today_s)
        show("import", f.import_today_s, f.import_alt_s, imp)
        red = statistics.median(f.read_today_s) / statistics.median(f.read_alt_s)
        show("read", f.read_today_s, f.read_alt_s, red)


class _InTurn:
    """A stand-in for ``ThreadPoolExecutor`` that runs each task at once, on the
    caller's thread: the import's steps one after another, as before they overlapped."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __enter__(self) -> _InTurn:
        return self

    def __exit__(self, *args: object) -> None:
        pass

    def submit(self, fn: Callable[..., object], *args: object) -> Future[object]:
        done: Future[object] = Future()
        try:
            done.set_result(fn(*args))
        except Exception as exc:
            done.set_exception(exc)
        return done

    def shutdown(self, wait: bool = True) -> None:
        pass


@contextmanager
def in_turn() -> Iterator[None]:
    """The one-pass import with its steps in turn, not overlapped on two threads
    (``--alt-in-turn``: what the overlap gains, in the same rounds)."""
    saved = importing.ThreadPoolExecutor, segment_store.ThreadPoolExecutor
    importing.ThreadPoolExecutor = segment_store.ThreadPoolExecutor = _InTurn  # type: ignore[assignment, misc]
    try:
        yield
    finally:
        importing.ThreadPoolExecutor, segment_store.ThreadPoolExecutor = saved  # type: ignore[misc]


def _fresh_store(root: Path, segments: bool) -> Store:
    shutil.rmtree(root, ignore_errors=True)
    store = Store(root, segments=segments)
    store.segmented.store.ensure()  # once in a store's life: its folders
    os.sync()  # each import starts with nothing of the last one's left to write
    return store


def _disk_blocks(root: Path) -> int:
    """Bytes of blocks the store's files take (packs' freed ranges are holes), once
    the reaper removed the duplicates' copies; the index and its logs left out."""
    reaper.drain()
    total = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.name.startswith("index.sqlite3"):
            total += path.stat().st_blocks * 512
    return total


def _import_all(store: Store, files: list[Path], raw: set[Path]) -> None:
    for path in files:
        store.import_file(path, raw=path in raw)


def _drop_cached(store: Store) -> None:
    """Flush the store's files and drop them from the page cache."""
    os.sync()
    for path in store.root.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _read_all(store: Store) -> None:
    left, right = socket.socketpair()
    drained = threading.Thread(target=_drain, args=(right,), daemon=True)
    drained.start()
    try:
        for model in store.list_models():
            digest = model.digest
            recipe = store.recipe_of(digest)
            if recipe is not None:
                store.segmented.send_parts(recipe, left)
            else:
                with store.files.path_of(digest).open("rb") as fh:
                    left.sendfile(fh)
    finally:
        left.close()
        drained.join()
        right.close()


def _drain(conn: socket.socket) -> None:
    while conn.recv(1 << 20):
        pass


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start
