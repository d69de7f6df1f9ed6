"""`verify`: re-hash every stored blob and pre-installed file.

A blob whose bytes no longer match its name is moved to ``quarantine/`` and marked in
the index, so it is never served again (a later import or download of the right
bytes replaces it). A pre-installed file cannot be moved (it is not ours): it is
marked and no longer served until its folder's models.json is fixed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from webmodels.digest import Digest
from webmodels.store.blobs import Progress, disk_error, hash_file
from webmodels.store.records import VerifyProblem, VerifyReport
from webmodels.store.segmented import check_segments

if TYPE_CHECKING:
    from webmodels.store.store import Store


def verify_store(store: Store, *, progress: Progress | None = None) -> VerifyReport:
    targets = _targets(store)
    problems: list[VerifyProblem] = []
    done = 0
    for digest, path, size, preinstalled in targets:
        base = done

        def step(n: int, base: int = base) -> None:
            if progress:
                progress(base + n)

        try:
            problem = _problem(store, digest, path, size, preinstalled, step)
        except OSError as exc:  # a read failed: the disk, not the file's bytes (no quarantine)
            raise disk_error(exc, path.parent) from exc
        done += size
        if problem is None:
            _mark_verified(store, digest, preinstalled, path)
            continue
        moved = _quarantine(store, digest, preinstalled, path)
        problems.append(VerifyProblem(digest, path, problem, moved))
    return VerifyReport(checked=len(targets), bytes_hashed=done, problems=tuple(problems))


def _problem(
    store: Store, digest: Digest, path: Path, size: int, preinstalled: bool, step: Progress
) -> str | None:
    recipe = None if preinstalled else store.recipe_of(digest)
    problem = (
        _check(path, digest, size, step)
        if recipe is None
        else check_segments(store, recipe, digest, step)
    )
    converted = problem == "missing" and not preinstalled and recipe is None
    if converted and (recipe := store.recipe_of(digest)) is not None:  # meanwhile
        problem = check_segments(store, recipe, digest, step)
    return problem


def total_bytes(store: Store) -> int:
    return sum(size for _, _, size, _ in _targets(store))


def _targets(store: Store) -> list[tuple[Digest, Path, int, bool]]:
    rows = store.index.query(
        "SELECT b.sha256, o.size FROM blobs b JOIN objects o USING (sha256) "
        "WHERE b.state = 'ok' ORDER BY b.sha256"
    )
    targets = [
        (Digest(r["sha256"]), store.files.path_of(Digest(r["sha256"])), int(r["size"]), False)
        for r in rows
    ]
    for r in store.index.query("SELECT * FROM preinstalled WHERE state = 'ok' ORDER BY path"):
        targets.append((Digest(r["sha256"]), Path(r["path"]), int(r["size"]), True))
    return targets


def _check(path: Path, digest: Digest, size: int, progress: Progress) -> str | None:
    try:
        if path.stat().st_size != size:
            return "size mismatch"
        actual, _ = hash_file(path, progress=progress)
    except FileNotFoundError:
        return "missing"
    return None if actual == digest else "hash mismatch"


def _mark_verified(store: Store, digest: Digest, preinstalled: bool, path: Path) -> None:
    now = time.time()
    with store.index.write() as db:
        if preinstalled:
            db.execute("UPDATE preinstalled SET indexed_at = ? WHERE path = ?", (now, str(path)))
        else:
            db.execute("UPDATE blobs SET verified_at = ? WHERE sha256 = ?", (now, digest.hex))


def _quarantine(store: Store, digest: Digest, preinstalled: bool, path: Path) -> Path | None:
    if preinstalled:
        with store.index.write() as db:
            # mtime -1: the next indexing re-hashes it (size and mtime could not tell).
            db.execute(
                "UPDATE preinstalled SET state = 'quarantined', mtime_ns = -1 WHERE path = ?",
                (str(path),),
            )
        return None
    return store.quarantine(digest)
