"""The tables scripts/bench/first_visit.py prints: a row per visit, the medians with and
without the extension, and where a first visit's time goes while it stores a model:
the page's own steps (`lookup`: asking the store first, `fetch` from the network,
`requestFileHandle` create, `createWritable`, `write`, `close`;
`cache.put` without the extension; then `arrayBuffer` of the fetched Blob) and, with
the extension, the host's steps of the write from its log: `put` (ticket issued to the
PUT's head), `body` (received, written and hashed), `fsync` (verify and fsync),
`describe` (read the model's metadata), `publish` (into the store and its index),
`floor` (the answer padded to the 10 ms write-timing floor)."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CASES = ("first", "second strict", "second common")
PROFILES = ("extension", "plain")
HOST_LINE = re.compile(r"loopback write phases \(s\): (.*)$")
PAGE_STEPS = (
    "lookup",
    "fetch",
    "requestFileHandle",
    "createWritable",
    "write",
    "close",
    "cache.put",
    "arrayBuffer",
)
HOST_STEPS = ("put", "body", "fsync", "describe", "publish", "floor")


class HostLog:
    """The write timings the host logged (`WEBMODELS_LOG_DIR`), taken as they come."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.seen = 0

    def take(self) -> dict[str, float] | None:
        """The latest write's steps in seconds since the last take; None if none."""
        lines = []
        for log in sorted(self.log_dir.rglob("host.log*")):
            lines += [m.group(1) for m in map(HOST_LINE.search, log.read_text().splitlines()) if m]
        new, self.seen = lines[self.seen :], len(lines)
        if not new:
            return None
        return {k: float(v) for k, v in (word.split("=") for word in new[-1].split())}


class Breakdown:
    """Per (profile, case): the page's and the host's steps, in seconds, per round."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], list[dict[str, float]]] = {}

    def add(self, profile: str, case: str, result: dict[str, Any]) -> None:
        steps = {k: v / 1000 for k, v in (result.get("phases") or {}).items()}
        steps |= {f"host {k}": v for k, v in (result.get("host") or {}).items()}
        if steps:
            self.rows.setdefault((profile, case), []).append(steps)

    def as_json(self) -> dict[str, dict[str, dict[str, list[float]]]]:
        found: dict[str, dict[str, dict[str, list[float]]]] = {}
        for (profile, case), rounds in self.rows.items():
            names = {name for steps in rounds for name in steps}
            per = {name: [steps.get(name, 0.0) for steps in rounds] for name in sorted(names)}
            found.setdefault(case, {})[profile] = per
        return found

    def print_table(self) -> None:
        """Medians per step: page steps, then the host's (within the page's `close`)."""
        columns = [*PAGE_STEPS, *(f"host {s}" for s in HOST_STEPS)]
        present = [c for c in columns if any(c in s for r in self.rows.values() for s in r)]
        print("\nwhere the time went, medians (s); the host's steps happen within the page's close")
        print(f"{'':34s}" + "".join(f"{c.removeprefix('host '):>18s}" for c in present))
        print(
            f"{'':34s}"
            + "".join(f"{'host' if c.startswith('host ') else 'page':>18s}" for c in present)
        )
        for (profile, case), rounds in self.rows.items():
            cells = []
            for column in present:
                values = [steps[column] for steps in rounds if column in steps]
                cells.append(f"{statistics.median(values):18.3f}" if values else f"{'-':>18s}")
            print(f"{profile + ' ' + case:34s}" + "".join(cells))


@dataclass
class Figures:
    """Seconds per (profile, case): until the bytes are ready, and the total."""

    ready: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    total: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, profile: str, case: str, result: dict[str, Any]) -> None:
        self.ready.setdefault((profile, case), []).append(result["ready"] / 1000)
        self.total.setdefault((profile, case), []).append(result["total"] / 1000)


def fmt_row(n: int, profile: str, case: str, r: dict[str, Any]) -> str:
    parts = [f"round {n} {profile:9s} {case:13s} {r['source']:7s}"]
    if r["fetched"] is not None:
        parts.append(f"fetched {r['fetched'] / 1000:6.2f} s  stored {r['stored'] / 1000:6.2f} s")
    else:
        parts.append(" " * 34)
    parts.append(f"ready {r['ready'] / 1000:6.2f} s  session +{r['session'] / 1000:5.2f} s")
    parts.append(f"total {r['total'] / 1000:6.2f} s")
    return "  ".join(parts)


def report(figures: Figures) -> None:
    print("\nmedians (s)                 with ext  without   ratio | ready: with  without  ratio")
    for case in CASES:
        total = [statistics.median(figures.total[(p, case)]) for p in PROFILES]
        ready = [statistics.median(figures.ready[(p, case)]) for p in PROFILES]
        print(
            f"{case:26s} {total[0]:8.2f} {total[1]:8.2f} {total[0] / total[1]:6.2f}x"
            f" |   {ready[0]:8.2f} {ready[1]:8.2f} {ready[0] / ready[1]:6.2f}x"
        )
