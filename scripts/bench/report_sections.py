"""What the benchmark report says about each benchmark: from the figures a benchmark
wrote with `--json` to a section — the chart's numbers, a short text on what it
shows, a table of medians and the acceptance targets, each marked met or not.

Pure: no files, no plotting (scripts/bench/report_charts.py draws and writes). A
benchmark that did not run is a dict `{"skipped": reason}`; its section says so.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

Figures = dict[str, Any]


@dataclass(frozen=True)
class Chart:
    """Grouped bars: one group per label in `groups`, one bar per series (None: no
    bar), an optional note above each group."""

    file: str  # PNG name, under the report's benchmarks/ folder
    title: str
    groups: list[str]
    series: dict[str, list[float | None]]
    unit: str
    log: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Check:
    """An acceptance target and what was measured against it."""

    target: str
    measured: str
    met: bool


@dataclass(frozen=True)
class Section:
    title: str
    shows: str  # what the chart shows, one or two sentences
    chart: Chart | None = None
    table: list[list[str]] = field(default_factory=list)  # a header row, then rows
    checks: list[Check] = field(default_factory=list)
    missing: str | None = None  # why it was not measured


def median(values: list[float]) -> float:
    return statistics.median(values)


def number(value: float) -> str:
    """Three significant figures at most, no exponent: 0.0123, 1.23, 12.3, 123, 1234."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def ratio(value: float) -> str:
    return f"{value:.2f}x"


# --- first visit -----------------------------------------------------------------------

CASES = ("first", "second strict", "second common")
CASE_TITLES = {
    "first": "first site",
    "second strict": "second site, strict (not common)",
    "second common": "second site, common model",
}
# With / without the extension, per case and server speed ("unlimited" or "limited").
FIRST_VISIT_TARGETS = {
    ("first", "unlimited"): 1.15,
    ("first", "limited"): 1.05,
    ("second strict", "unlimited"): 1.15,
    ("second strict", "limited"): 1.15,
    ("second common", "limited"): 0.5,
}


def first_visit(figures: Figures, *, slug: str, speed: str) -> Section:
    """`speed`: how the report names the model server's rate ("unlimited", "100 Mbit/s")."""
    title = f"First visit, model server {speed}"
    if "skipped" in figures:
        return Section(title, shows="", missing=figures["skipped"])
    seconds = figures["seconds"]
    limited = "limited" if figures["rate_mbps"] > 0 else "unlimited"
    with_ext = [median(seconds[case]["extension"]["total"]) for case in CASES]
    without = [median(seconds[case]["plain"]["total"]) for case in CASES]
    ratios = [w / p for w, p in zip(with_ext, without, strict=True)]
    table = [["case", "with extension", "without", "with / without", "target"]]
    checks = []
    for case, w, p, r in zip(CASES, with_ext, without, ratios, strict=True):
        target = FIRST_VISIT_TARGETS.get((case, limited))
        table.append(
            [
                CASE_TITLES[case],
                f"{number(w)} s",
                f"{number(p)} s",
                ratio(r),
                f"≤ {ratio(target)}" if target else "—",
            ]
        )
        if target:
            goal = f"{CASE_TITLES[case]}, server {speed}: ≤ {ratio(target)} the time without"
            checks.append(Check(goal, ratio(r), r <= target))
    model_mb = figures["model_bytes"] / 1e6
    shows = (
        f"Seconds until a page in Chromium has fetched an ONNX model of {model_mb:.0f} MB, "
        "stored it (Cross-Origin Storage with an awaited `close()`; the Cache API "
        "without the extension) and created an ONNX Runtime Web session from it — "
        "with the extension and in a plain profile, median of "
        f"{figures['rounds']} alternating round(s). Lower is better; the label above "
        "each pair is the ratio with / without."
    )
    chart = Chart(
        file=f"{slug}.png",
        title=f"First visit ({model_mb:.0f} MB model, server {speed})",
        groups=[CASE_TITLES[case] for case in CASES],
        series={"with extension": list(with_ext), "without extension": list(without)},
        unit="seconds (median)",
        notes=[ratio(r) for r in ratios],
    )
    return Section(title, shows, chart, table, checks)


# --- page reads and writes -------------------------------------------------------------

PATHS = {
    "bridge": "bridge (loopback)",
    "native": "native messaging",
    "native-1": "native messaging, one chunk at a time",
}


def speeds(seconds: dict[str, list[float]], size: int) -> dict[str, float]:
    """MB/s per way, from the median time."""
    return {way: size / 1e6 / median(times) for way, times in seconds.items()}


BROWSER_TITLES = {"chromium": "Chromium", "firefox": "Firefox"}


def transfer_rows(figures: Figures) -> list[dict[str, Any]]:
    """A benchmark's rows (one per browser and size), each with its browser; figures
    written before Firefox was measured hold one Chromium row, or sizes without a
    browser."""
    if "skipped" in figures:
        return []
    rows = figures.get("sizes", [figures])
    found = [{"browser": figures.get("browser", "chromium")} | row for row in rows]
    order = list(BROWSER_TITLES)
    return sorted(found, key=lambda row: (row["mib"], order.index(row["browser"])))


def page_transfer(write: Figures, read: Figures) -> Section:
    title = "Page writes and reads by path"
    if "skipped" in write and "skipped" in read:
        return Section(title, shows="", missing=write["skipped"])
    groups: list[str] = []
    series: dict[str, list[float | None]] = {label: [] for label in PATHS.values()}
    table = [["what", "browser", "size", *PATHS.values()]]
    write_speeds: dict[str, dict[int, dict[str, float]]] = {}
    for found, verb in ((write, "write"), (read, "read")):
        for row in transfer_rows(found):
            browser = BROWSER_TITLES[row["browser"]]
            mb = speeds(row["seconds"], row["bytes"])
            if verb == "write":
                write_speeds.setdefault(browser, {})[row["mib"]] = mb
            groups.append(f"{verb} {row['mib']} MiB, {browser}")
            cells = [verb, browser, f"{row['mib']} MiB"]
            for way, label in PATHS.items():
                series[label].append(mb.get(way))
                cells.append(f"{number(mb[way])} MB/s" if way in mb else "—")
            table.append(cells)
    browsers = [b for b in BROWSER_TITLES.values() if any(f", {b}" in g for g in groups)]
    unmeasured = "" if "Firefox" in browsers else " Firefox was not measured (not installed?)."
    shows = (
        "MB/s of a page's Cross-Origin Storage write (`write(blob)` → `close()`) and of "
        "a stored model read into the page (`arrayBuffer()` over the bridge, native "
        "messaging through the page's own `models.read` requests; `stream()`, also over "
        f"the bridge, is printed by page_read.py), in {' and '.join(browsers)} with the "
        "real extension and "
        "host, median of alternating rounds. Higher is better. The bridge frame moves the "
        "bytes over a one-time 127.0.0.1 URL; native messaging sends base64 chunks "
        "(writes: 3 in flight, and one at a time as before the fast write path)." + unmeasured
    )
    chart = Chart(
        file="page-transfer.png",
        title=f"Page writes and reads ({', '.join(browsers)})",
        groups=groups,
        series=series,
        unit="MB/s (median)",
    )
    checks = [c for b, found in write_speeds.items() for c in write_checks(b, found)]
    return Section(title, shows, chart, table, checks)


def write_checks(browser: str, write_speeds: dict[int, dict[str, float]]) -> list[Check]:
    """At the largest size measured in `browser` (the target is stated for 200 MiB)."""
    mib = max(write_speeds)
    mb = write_speeds[mib]
    at = f"{mib} MiB" + ("" if mib >= 200 else " (the target is for 200 MiB)")
    bridge_gain = mb["bridge"] / mb["native-1"]
    pipelined_gain = mb["native"] / mb["native-1"]
    return [
        Check(
            f"{browser}: write ≥ 200 MB/s through the bridge, {at}",
            f"{number(mb['bridge'])} MB/s",
            mb["bridge"] >= 200,
        ),
        Check(
            f"{browser}: bridge ≥ 10x native messaging one chunk at a time, {at}",
            ratio(bridge_gain),
            bridge_gain >= 10,
        ),
        Check(
            f"{browser}: native-messaging fallback ≥ 2x one chunk at a time, {at}",
            ratio(pipelined_gain),
            pipelined_gain >= 2,
        ),
    ]


# --- inference -------------------------------------------------------------------------

RUNTIMES = {
    "host": "host (ONNX Runtime, native)",
    "in_process": "ONNX Runtime in process",
    "node": "ONNX Runtime for Node",
    "web": "ONNX Runtime Web (WASM)",
}


def inference(figures: Figures) -> Section:
    title = "Inference: host against WASM"
    if "skipped" in figures:
        return Section(title, shows="", missing=figures["skipped"])
    rows = figures["inference"]
    ms = [{k: median(v) * 1000 for k, v in row["seconds"].items()} for row in rows]
    shown = [k for k in ("host", "web") if all(k in m for m in ms)]
    table = [["case", *(RUNTIMES[k] for k in RUNTIMES if all(k in m for m in ms)), "WASM / host"]]
    checks = []
    for row, m in zip(rows, ms, strict=True):
        cells = [f"{number(m[k])} ms" for k in RUNTIMES if all(k in n for n in ms)]
        speedup = m["web"] / m["host"] if "web" in m else None
        table.append([row["case"], *cells, ratio(speedup) if speedup else "—"])
        if speedup and not row["small"]:
            goal = f"{row['case']}: faster through the host than in WASM"
            checks.append(Check(goal, ratio(speedup), speedup > 1))
        if row["small"]:
            # As sessions.py judges it: the fastest calls are the ones other load on
            # the machine left alone, so their difference is the steadier estimate.
            fastest = {k: min(row["seconds"][k]) * 1000 for k in ("host", "in_process")}
            overhead = fastest["host"] - fastest["in_process"]
            goal = f"{row['case']}: host protocol overhead ≤ 2 ms per call"
            checks.append(Check(goal, f"{number(overhead)} ms (fastest calls)", overhead <= 2))
    wasm = "" if "web" in shown else " ONNX Runtime Web was not measured (npm missing?)."
    shows = (
        "Milliseconds per `sessions.run` call through a real host process (JSON frames, "
        "base64 tensors, the runtime worker) against ONNX Runtime Web (WASM, one thread, "
        f"in Node) on real models, median of {len(rows[0]['seconds']['host'])} calls; "
        f"log scale, lower is better (ONNX Runtime {figures['onnxruntime']}).{wasm}"
    )
    chart = Chart(
        file="inference.png",
        title="Inference per call: host against WASM",
        groups=[row["case"] for row in rows],
        series={RUNTIMES[k]: [m[k] for m in ms] for k in shown},
        unit="ms per call (median, log scale)",
        log=True,
    )
    return Section(title, shows, chart, table, checks)
