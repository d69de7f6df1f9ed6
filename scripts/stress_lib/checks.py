"""What must hold after every injected fault, checked as the next start sees it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.store import blobs
from webmodels.store.segments import reconstruct
from webmodels.store.segments.reconstruct import SegmentMissing
from webmodels.store.store import Store


@dataclass
class Verdict:
    """What one injection left behind; `lost` and `corrupted` must stay empty."""

    clear_error: bool = True
    lost: list[str] = field(default_factory=list)
    corrupted: list[str] = field(default_factory=list)


@contextmanager
def next_start() -> Iterator[None]:
    """The writers of this run are gone, as they are for a newly started host."""
    real = blobs.process_alive
    blobs.process_alive = lambda pid: False
    try:
        yield
    finally:
        blobs.process_alive = real


def sha256_of(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def check_store(
    root: Path,
    verdict: Verdict,
    *,
    known_orphans: frozenset[str] = frozenset(),
    resumable: bool = False,
) -> Store:
    """Open `root` as the next start does and check index, blobs and temp files
    (with `resumable`, a download's ``dl-*.partial`` is kept for its resume)."""
    with next_start():
        store = Store(root)
        store.remove_stale_temp_files()
    ok = store.index.query("PRAGMA integrity_check")
    if [r[0] for r in ok] != ["ok"]:
        verdict.corrupted.append(f"integrity_check: {[r[0] for r in ok]}")
    rows = store.index.query(
        "SELECT b.sha256, b.state, o.size FROM blobs b JOIN objects o USING (sha256)"
    )
    indexed = {r["sha256"] for r in rows}
    for row in rows:
        if row["state"] != "ok":
            continue
        digest = Digest(row["sha256"])
        if store.recipe_of(digest) is not None:
            _check_rebuilt(store, digest, row["size"], verdict)
            continue
        path = store.files.path_of(digest)
        if not path.is_file():
            verdict.lost.append(f"indexed blob {row['sha256'][:12]} has no file")
        elif path.stat().st_size != row["size"] or sha256_of(path) != row["sha256"]:
            verdict.corrupted.append(f"blob {row['sha256'][:12]} does not re-hash")
    for digest, _path in store.files.iter_blobs():
        if digest.hex not in indexed and digest.hex not in known_orphans:
            verdict.corrupted.append(f"unindexed blob {digest.short}")
    temps = [store.files.tmp_dir.glob(f"*.{kind}") for kind in ("partial", "aside", "publishing")]
    for temp in [path for paths in temps for path in paths]:
        if resumable and temp.name.startswith("dl-"):
            continue
        verdict.corrupted.append(f"temp file survives the next start: {temp.name}")
    return store


def _check_rebuilt(store: Store, digest: Digest, size: int, verdict: Verdict) -> None:
    """A blob kept as segments (``WEBMODELS_STORE_SEGMENTS=1``) rebuilds from its
    recipe to its size and name."""
    recipe = store.recipe_of(digest)
    assert recipe is not None
    whole, length = hashlib.sha256(), 0
    try:
        for block in reconstruct(store.segmented.store, recipe):
            whole.update(block)
            length += len(block)
    except (SegmentMissing, FileNotFoundError):
        verdict.lost.append(f"indexed blob {digest.short} has no file")
        return
    if length != size or whole.hexdigest() != digest.hex:
        verdict.corrupted.append(f"blob {digest.short} does not re-hash")


def check_error(exc: BaseException | None, verdict: Verdict) -> None:
    """A failed operation says what happened as a `HostError` with a code and a
    message; anything else reaches the user as a bare internal error."""
    if exc is None:
        return
    if not isinstance(exc, HostError) or not exc.code or not exc.message:
        verdict.clear_error = False
