"""The demo's printing: timestamped steps, the checks that decide its exit status, and
what a page's load result says in a user's words."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Log:
    """Timestamped lines, and the checks that decide the exit status."""

    started: float = field(default_factory=time.perf_counter)
    failures: list[str] = field(default_factory=list)

    def step(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:5.1f}s] {text}", flush=True)

    def detail(self, text: str) -> None:
        print(f"         {text}", flush=True)

    def check(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failures.append(what)
            print(f"         FAILED: {what}", flush=True)
        return ok


def mib(size: int) -> str:
    return f"{size / 1048576:.2f} MiB"


@contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as t:` … `t[0]` is the seconds the block took."""
    box = [0.0]
    began = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - began


def progress_line(result: dict[str, Any], size: int) -> str:
    events = result.get("events") or []
    if not events:
        return "no download.progress events (the model came from the store)"
    picks = events if len(events) <= 8 else [events[i * (len(events) - 1) // 7] for i in range(8)]
    steps = " ".join(f"{round(100 * e['loaded'] / (e['total'] or 1))}%" for e in picks)
    span = (events[-1]["t"] - events[0]["t"]) / 1000
    rate = f", {size / span / 1e6:.1f} MB/s" if span > 0.05 else ""
    return f"progress {steps}  ({len(events)} events over {span:.1f} s{rate})"


def source_words(
    info: dict[str, Any], *, downloaded_now: bool, by: str = "another site (common model)"
) -> str:
    """Where the page's model came from, in a user's words. `source` is how the stored
    copy first arrived, so a common model another site downloaded says "downloaded"
    even where this site downloaded nothing."""
    source = info.get("source")
    if source == "preinstalled":
        return "pre-installed on this computer — no download"
    if source == "imported":
        return "imported by the user — no download"
    if downloaded_now:
        return "downloaded now by this site"
    return f"already stored by {by} — no download"


def describe_info(info: dict[str, Any], *, downloaded_now: bool) -> list[str]:
    def tensors(items: list[dict[str, Any]]) -> str:
        return ", ".join(f"{t['name']}:{t['type']}{t['dims']}" for t in items or [])

    opsets = ", ".join(f"{k} {v}" for k, v in (info.get("opsets") or {}).items())
    return [
        f"sha256 {info['sha256'][:16]}…  {info['size']:,} bytes  {info['format']}",
        f"source: {source_words(info, downloaded_now=downloaded_now)}",
        f"inputs {tensors(info.get('inputs', []))} → outputs {tensors(info.get('outputs', []))}",
        f"opsets {opsets}; producer {info.get('producer')}",
    ]
