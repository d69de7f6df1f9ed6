"""How the CLI shows things: readable tables by default, JSON with ``--json``,
and a progress bar on stderr for long work (only when stderr is a terminal)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TextIO


def print_json(value: Any, *, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned text columns; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(_looks_numeric(row[i]) for row in cells[1:]) and len(cells) > 1
        for i in range(len(headers))
    ]
    lines = []
    for n, row in enumerate(cells):
        parts = [
            c.rjust(w) if numeric[i] and n > 0 else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _looks_numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace(".", "").replace("%", "").split(" ")[0]
    return stripped.isdigit() or text == ""


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def print_kv(pairs: Mapping[str, object], *, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    width = max((len(k) for k in pairs), default=0)
    for key, value in pairs.items():
        out.write(f"{key.ljust(width)}  {value}\n")


class ProgressBar:
    """A one-line progress bar on stderr, redrawn at most 10 times a second.

    Silent when stderr is not a terminal (scripts, ``--json``), so pipes stay clean.
    """

    def __init__(self, label: str, total: int | None, *, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self._last = 0.0
        self._done = 0

    def update(self, done: int) -> None:
        self._done = done
        now = time.monotonic()
        if self.enabled and now - self._last >= 0.1:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        if self.total:
            frac = min(1.0, self._done / self.total)
            bar = "#" * int(frac * 30)
            text = f"{self.label} [{bar:<30}] {frac * 100:5.1f}% {human_bytes(self._done)}"
        else:
            text = f"{self.label} {human_bytes(self._done)}"
        self.stream.write("\r" + text[:100])
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def callback(self) -> Callable[[int], None]:
        return self.update
