"""How the CLI shows things: readable tables by default, JSON with ``--json``,
and a progress bar on stderr for long work (only when stderr is a terminal).
Tables and progress are laid out by rich rather than by hand."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text


def print_json(value: Any, *, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Plain-text columns (rich's table layout, no borders or colour, so pipes and
    ``grep`` see clean lines); numbers right-aligned."""
    cells = [["" if c is None else str(c) for c in r] for r in rows]
    if len(cells) > _RICH_ROWS:
        return _plain_table([str(h) for h in headers], cells)
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="")
    for i, header in enumerate(headers):
        numeric = bool(cells) and all(_looks_numeric(row[i]) for row in cells)
        table.add_column(str(header), justify="right" if numeric else "left", no_wrap=True)
    for row in cells:
        table.add_row(*(Text(c) for c in row))  # Text: no markup read from the data
    out = io.StringIO()
    Console(file=out, width=_TABLE_WIDTH, no_color=True, highlight=False).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


_TABLE_WIDTH = 10_000  # wide rows stay one line each; a terminal wraps them itself
# rich lays out about 2,000 rows a second: `ls` of a 10,000-file store took 5 s of CPU.
# Past this many rows the same layout (widths in terminal cells, two spaces between
# columns, numbers right-aligned) is written directly.
_RICH_ROWS = 200


def _plain_table(headers: list[str], cells: list[list[str]]) -> str:
    numeric = [all(_looks_numeric(row[i]) for row in cells) for i in range(len(headers))]
    widths = [max(cell_len(row[i]) for row in [headers, *cells]) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        padded = (_pad(c, w, right=n) for c, w, n in zip(row, widths, numeric, strict=True))
        return "  ".join(padded).rstrip()

    return "\n".join(line(row) for row in [headers, *cells])


def _pad(text: str, width: int, *, right: bool) -> str:
    gap = " " * (width - cell_len(text))
    return gap + text if right else text + gap


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
    """A progress line on stderr (rich): bar, bytes done of the total, rate and time
    left; bytes and rate alone while the total is unknown.

    Silent when stderr is not a terminal (scripts, ``--json``), so pipes stay clean.
    """

    def __init__(self, label: str, total: int | None, *, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        if self._progress is None or self._task is None:
            self._progress = _progress(self.stream)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total)
        self._progress.update(self._task, completed=done, total=self.total)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def callback(self) -> Callable[[int], None]:
        return self.update


def _progress(stream: TextIO) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),  # decimal units, like the rate beside it
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(file=stream),
        refresh_per_second=10,
    )
