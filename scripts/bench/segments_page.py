"""Reads via the fast path to a page, segments against the whole-file store of today:
for scripts/bench/segments.py (``--page``) or on its own.

Two headless Chromiums with the real extension, each with its own host and store in
one run: one host with ``WEBMODELS_STORE_SEGMENTS=0`` (whole files, today's store),
one with segments (the default). Each page loads the same real model files from a
127.0.0.1 server (so each host downloads and stores them its own way), then reads
every file whole with ``webmodels.load({sha256}).arrayBuffer()`` (the extension's
bridge fetching the host's one-time 127.0.0.1 URL), alternating rounds (whole,
segments, then segments, whole, ...). Each read's length and SHA-256 are checked on
the page (after the clock stops), so a broken read cannot look fast; after the run
each store is opened to check it holds the files as the layout says.

Printed: MB/s per round and layout, the medians, and the ratio segments / whole
(issue 15's target: >= 0.8).

Usage: .venv/bin/python scripts/bench/segments_page.py [--models ocr-rec,magika,silero]
       [--rounds 5]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from page_browsers import Evaluate, chromium_page_of, serve_pages

from e2e.conftest import require_chromium
from support.httpserver import ModelServer
from webmodels.digest import Digest
from webmodels.store import layout
from webmodels.store.store import Store

LAYOUTS = ("whole", "segments")
SETTING = {"whole": "0", "segments": "1"}  # WEBMODELS_STORE_SEGMENTS per host
LARGE = 8 << 20  # files this big also count alone: their bytes, not the per-load cost
READ = """async (sha) => {
  const t = performance.now();
  const m = await webmodels.load({sha256: sha});
  const b = await m.arrayBuffer();
  const ms = performance.now() - t;
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  return [b.byteLength, ms, Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("")];
}"""


@dataclass(frozen=True)
class PageFigures:
    rounds: int
    files: int
    megabytes: float
    whole_s: list[float]  # every round's seconds to read all files
    segments_s: list[float]
    segmented_files: int  # files the segment store holds as recipes (checked after)
    large_megabytes: float = 0.0  # the files of >= LARGE bytes, alone
    large_whole_s: list[float] = field(default_factory=list)
    large_segments_s: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Segments' MB/s over today's whole files' (medians of the rounds)."""
        return statistics.median(self.whole_s) / statistics.median(self.segments_s)

    @property
    def large_ratio(self) -> float:
        return statistics.median(self.large_whole_s) / statistics.median(self.large_segments_s)


def distinct(files: list[Path]) -> dict[str, Path]:
    """The files by SHA-256, one per content (a store keeps one copy)."""
    out: dict[str, Path] = {}
    for path in files:
        with path.open("rb") as fh:
            out.setdefault(hashlib.file_digest(fh, "sha256").hexdigest(), path)
    return out


@contextmanager
def two_pages(work: Path, models: dict[str, Path]) -> Iterator[dict[str, Evaluate]]:
    """A page per layout, each with its host and store, every model loaded there."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with ExitStack() as stack:
        pages = stack.enter_context(ModelServer())
        serve_pages(pages)
        server = stack.enter_context(ModelServer())
        driver = stack.enter_context(sync_playwright())
        evaluates: dict[str, Evaluate] = {}
        for layout in LAYOUTS:
            env = {"WEBMODELS_STORE_SEGMENTS": SETTING[layout]}
            evaluates[layout] = stack.enter_context(
                chromium_page_of(driver, work / layout, pages, env)
            )
        for sha, path in models.items():
            data = path.read_bytes()
            integrity = "sha256-" + base64.b64encode(bytes.fromhex(sha)).decode()
            query = {"url": server.add(f"/{sha}/{path.name}", data), "integrity": integrity}
            for evaluate in evaluates.values():
                evaluate("async (q) => { await webmodels.load(q); }", query)
        yield evaluates


def read_round(evaluate: Evaluate, models: dict[str, Path]) -> tuple[float, float]:
    """Seconds (the page's clock) to read every model whole, and the large ones
    alone; each read checked."""
    seconds = large = 0.0
    for sha, path in models.items():
        size, ms, got = evaluate(READ, sha)
        if size != path.stat().st_size or got != sha:
            raise SystemExit(f"bad read of {path.name}: {size} bytes, sha256 {got}")
        seconds += ms / 1000
        large += ms / 1000 if size >= LARGE else 0.0
    return seconds, large


def segmented_count(root: Path, models: dict[str, Path]) -> int:
    with Store(layout.settle(root)) as store:  # the folder the host opened
        return sum(store.recipe_of(Digest.parse(sha)) is not None for sha in models)


def page_figures(files: list[Path], work: Path, rounds: int) -> PageFigures:
    models = distinct(files)
    total = sum(p.stat().st_size for p in models.values()) / 1e6
    large = sum(p.stat().st_size for p in models.values() if p.stat().st_size >= LARGE) / 1e6
    times: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    large_times: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    print(f"\nfast path to a page (Chromium): {len(models)} files, {total:.1f} MB", flush=True)
    with two_pages(work, models) as evaluates:
        for n in range(rounds):
            order = LAYOUTS if n % 2 == 0 else LAYOUTS[::-1]
            for layout in order:
                seconds, large_s = read_round(evaluates[layout], models)
                times[layout].append(seconds)
                large_times[layout].append(large_s)
            each = ", ".join(f"{k} {total / times[k][-1]:6.0f} MB/s" for k in LAYOUTS)
            print(f"  round {n + 1}: {each}", flush=True)
    held = {k: segmented_count(work / k / "store", models) for k in LAYOUTS}
    if held["whole"] != 0 or held["segments"] == 0:
        raise SystemExit(f"stores not in their layouts: files held as recipes {held}")
    return PageFigures(
        rounds,
        len(models),
        total,
        times["whole"],
        times["segments"],
        held["segments"],
        large,
        large_times["whole"],
        large_times["segments"],
    )


def print_page_figures(f: PageFigures) -> None:
    whole = f.megabytes / statistics.median(f.whole_s)
    segs = f.megabytes / statistics.median(f.segments_s)
    print(f"  median of {f.rounds} alternating rounds ({f.files} files, {f.megabytes:.1f} MB):")
    print(f"  whole files {whole:6.0f} MB/s, segments {segs:6.0f} MB/s, ratio {f.ratio:.2f}")
    if f.large_megabytes:
        whole = f.large_megabytes / statistics.median(f.large_whole_s)
        segs = f.large_megabytes / statistics.median(f.large_segments_s)
        print(
            f"  files >= {LARGE >> 20} MiB ({f.large_megabytes:.1f} MB) alone: whole {whole:6.0f}"
            f" MB/s, segments {segs:6.0f} MB/s, ratio {f.large_ratio:.2f}"
        )
    print(f"  ({f.segmented_files} of {f.files} files held as segments; target >= 0.8)")


def main() -> None:
    from segments_corpus import build_corpus

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="ocr-rec,magika,silero")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="webmodels-segments-page-"))
    try:
        entries = build_corpus(args.models.split(","), work / "corpus")
        files = [p for e in entries for p in e.files]
        print_page_figures(page_figures(files, work, args.rounds))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
