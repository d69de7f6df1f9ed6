"""The browser soak's figures (stress_lib/soak.py): what it did and saw, round by round
(`Soak`), the progress line it prints every minute and the report at its end. It owns
nothing the host imports."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Soak:
    """What the soak did and saw; `errors` must stay empty."""

    rounds: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    failed_at_kill: int = 0  # calls sent as a host died, failed cleanly ("host exited")
    errors: list[str] = field(default_factory=list)
    peak_rss: int = 0
    threads: list[int] = field(default_factory=list)  # the host's threads, per round
    fds: list[tuple[int, int]] = field(default_factory=list)  # (host pid, open fds) per round
    workers: list[tuple[int, int]] = field(default_factory=list)  # (worker pid, RSS) per round
    running: dict[str, float] = field(default_factory=dict)  # temp files of running transfers
    # Temp files of transfers a kill stopped: kept with their resume state for the next
    # request (gc removes them after a day); counted, not an error, masking no other file.
    killed_temps: set[str] = field(default_factory=set)
    seconds: float = 0.0
    seed: int = 0

    @property
    def hosts(self) -> int:
        """Hosts the browser started (one, and one more after each kill)."""
        return len({pid for pid, _ in self.fds})

    def fd_first_last(self) -> tuple[int, int]:
        return (self.fds[0][1], self.fds[-1][1]) if self.fds else (0, 0)

    def worker_mib(self) -> str:
        """The session workers' RSS: first, peak and last (MiB)."""
        if not self.workers:
            return "none seen"
        rss = [n / (1 << 20) for _, n in self.workers]
        pids = {pid for pid, _ in self.workers}
        grown = max(
            max(n for p, n in self.workers if p == pid) - self.first_rss(pid) for pid in pids
        )
        return (
            f"first {rss[0]:.1f} peak {max(rss):.1f} last {rss[-1]:.1f} MiB ({len(pids)} "
            f"workers, each grew {grown / (1 << 20):.1f} MiB at most)"
        )

    def first_rss(self, worker: int) -> int:
        return next(n for p, n in self.workers if p == worker)


def print_progress(soak: Soak, started: float) -> None:
    first, last = soak.fd_first_last()
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(soak.operations.items()))
    print(
        f"  soak: {soak.rounds} rounds, {time.monotonic() - started:.0f} s, {soak.kills} kills, "
        f"peak host RSS {soak.peak_rss >> 20} MiB, worker RSS {soak.worker_mib()}, "
        f"fds {first} -> {last}, threads {max(soak.threads, default=0)} at most, "
        f"{len(soak.errors)} errors ({kinds})",
        flush=True,
    )


def report(soak: Soak, size: str) -> int:
    """Print the figures; the number of errors (0 for a good run)."""
    first, last = soak.fd_first_last()
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(soak.operations.items()))
    print(
        f"soak: {soak.rounds} rounds, {sum(soak.operations.values())} operations ({kinds}), "
        f"{soak.kills} host kills, {soak.hosts} hosts started, {soak.failed_at_kill} calls "
        f"failed cleanly at a kill, {len(soak.killed_temps)} partials of transfers killed "
        f"mid-way, {len(soak.errors)} errors, "
        f"peak host RSS {soak.peak_rss / (1 << 20):.1f} MiB, worker RSS {soak.worker_mib()}, "
        f"host fds first {first} last {last} "
        f"max {max((n for _, n in soak.fds), default=0)}, host threads first "
        f"{soak.threads[0] if soak.threads else 0} last {soak.threads[-1] if soak.threads else 0} "
        f"max {max(soak.threads, default=0)}, {soak.seconds:.1f} s ({size}, seed {soak.seed})"
    )
    for error in soak.errors[:10]:
        print(f"    {error}")
    return len(soak.errors)
