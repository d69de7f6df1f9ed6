"""Fail the Nth I/O call of each store operation, for N = 1, 2, … until the operation
completes without reaching N, with EIO (transient: that call only) and ENOSPC
(persistent: a full disk stays full until the operation ends); check after each."""

from __future__ import annotations

import errno
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stress_lib.checks import Verdict, check_error, check_store
from stress_lib.faults import Injector, installed, wrap_index
from stress_lib.operations import OPERATIONS, Operation, stage

KINDS = {"EIO": (errno.EIO, False), "ENOSPC": (errno.ENOSPC, True)}


@dataclass
class Row:
    operation: str
    kind: str
    injections: int = 0
    unclear: int = 0
    lost: int = 0
    corrupted: int = 0
    examples: list[str] = field(default_factory=list)

    def count(self, n: int, verdict: Verdict, where: str) -> None:
        """One injection at the Nth call: its verdict, and an example of what went
        wrong (losses first; one unclear error when nothing was lost)."""
        self.injections += 1
        self.unclear += not verdict.clear_error
        self.lost += bool(verdict.lost)
        self.corrupted += bool(verdict.corrupted)
        bad = [*verdict.lost, *verdict.corrupted]
        if (bad and len(self.examples) < 3) or (verdict.clear_error is False and not self.examples):
            self.examples.append(f"N={n} at {where}: {'; '.join(bad)}")


def scratch_dir() -> str | None:
    """A RAM-backed folder where there is one: fsync costs nothing there, so the run
    measures the store's logic, not the disk (the faults are injected, not real)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def inject_one(
    op: Operation,
    kind: str,
    n: int,
    *,
    weight_bytes: int,
    extra: Callable[[Path, bool, Verdict], None] | None = None,
) -> tuple[bool, Verdict, str]:
    """One run of `op` with call `n` failing; (fired, verdict, where it failed).
    `extra(store root, completed, verdict)`: an operation's own checks, after the
    store's."""
    err, persistent = KINDS[kind]
    with tempfile.TemporaryDirectory(prefix="wm-stress-", dir=scratch_dir()) as tmp:
        base = Path(tmp)
        s = stage(base, weight_bytes=weight_bytes)
        op.prepare(s)
        injector = Injector(fail_at=n, err=err, persistent=persistent)
        undo = wrap_index(s.store.index, injector)
        exc: BaseException | None = None
        roots = [base / "store", base / "fresh", *([base / "models"] if op.reads_source else [])]
        with installed(injector, roots):
            try:
                op.run(s)
            except Exception as caught:  # judged by check_error
                exc = caught
        undo()
        s.store.close()
        verdict = Verdict()
        check_error(exc, verdict)
        orphans = frozenset(s.known_orphans)
        check_store(s.root, verdict, known_orphans=orphans, resumable=op.resumable).close()
        if extra is not None:
            extra(s.root, exc is None, verdict)
        if op.name == "open_migrate":
            check_store(base / "fresh", verdict).close()
        if not injector.fired and exc is not None:
            verdict.corrupted.append(f"failed with no fault injected: {exc!r}")
        where = injector.fired[0] if injector.fired else ""
        if exc is not None and not verdict.clear_error:
            where += f" -> {type(exc).__name__}: {exc}"
        return bool(injector.fired), verdict, where


def run_injection(*, weight_bytes: int, max_n: int = 500) -> list[Row]:
    logging.disable(logging.CRITICAL)  # the store logs each failure; the table says it
    rows = []
    for op in OPERATIONS:
        for kind in KINDS:
            row = Row(op.name, kind)
            for n in range(1, max_n + 1):
                fired, verdict, where = inject_one(op, kind, n, weight_bytes=weight_bytes)
                if not fired:
                    break
                row.count(n, verdict, where)
            rows.append(row)
    logging.disable(logging.NOTSET)
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        f"{'operation':<17} {'fault':<7} {'injections':>10} {'unclear':>8} "
        f"{'lost':>5} {'corrupted':>9}"
    ]
    for r in rows:
        lines.append(
            f"{r.operation:<17} {r.kind:<7} {r.injections:>10} {r.unclear:>8} "
            f"{r.lost:>5} {r.corrupted:>9}"
        )
        lines += [f"    {e}" for e in r.examples]
    return "\n".join(lines)
