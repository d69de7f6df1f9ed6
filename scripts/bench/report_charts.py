"""The benchmark report's output: from the collected figures (every benchmark's
`--json`, the machine's details and the date) to `benchmarks.md` and its PNG charts
in `benchmarks/` beside it. Drawn with matplotlib's object API on the Agg canvas (no
pyplot state, no display needed).

Results, as scripts/bench/report_run.py collects them:
    {"date": "...", "quick": bool, "machine": {label: text},
     "benches": {"first_visit_unlimited": {...}, "first_visit_100mbps": {...},
                 "page_write": {...}, "page_read": {...}, "sessions": {...}}}
where a benchmark that did not run is `{"skipped": reason}`.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report_sections as sections
from report_sections import Chart, Section

CHARTS = "benchmarks"  # the PNGs' folder, beside the markdown file
COLOURS = ["#1f6f8b", "#e07a1f", "#9aa5b1", "#5b8c3a"]


def draw(chart: Chart, path: Path) -> None:
    """Grouped bars with their values on top, and each group's note above it."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.2), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    width = 0.8 / max(len(chart.series), 1)
    for n, (label, values) in enumerate(chart.series.items()):
        xs = [i + (n - (len(chart.series) - 1) / 2) * width for i in range(len(values))]
        shown = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        bars = axes.bar(
            [x for x, _ in shown],
            [v for _, v in shown],
            width * 0.95,
            label=label,
            color=COLOURS[n % len(COLOURS)],
        )
        axes.bar_label(bars, labels=[sections.number(v) for _, v in shown], fontsize=8)
    if chart.log:
        axes.set_yscale("log")
    top = max((v for vs in chart.series.values() for v in vs if v is not None), default=1.0)
    axes.set_ylim(top=top * (4 if chart.log else 1.25))
    for i, note in enumerate(chart.notes):
        axes.annotate(
            note,
            (i, 1),
            xycoords=("data", "axes fraction"),
            xytext=(0, -14),
            textcoords="offset points",
            ha="center",
            fontweight="bold",
        )
    labels = [textwrap.fill(group, 20) for group in chart.groups]
    axes.set_xticks(range(len(chart.groups)), labels, fontsize=9)
    axes.set_ylabel(chart.unit)
    axes.set_title(chart.title)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes.spines[["top", "right"]].set_visible(False)
    figure.savefig(path, format="png")


def build(results: dict[str, Any]) -> list[Section]:
    benches = results["benches"]
    absent = {"skipped": "not run"}
    return [
        sections.first_visit(
            benches.get("first_visit_unlimited", absent),
            slug="first-visit-unlimited",
            speed="unlimited",
        ),
        sections.first_visit(
            benches.get("first_visit_100mbps", absent),
            slug="first-visit-100mbps",
            speed="100 Mbit/s",
        ),
        sections.page_transfer(benches.get("page_write", absent), benches.get("page_read", absent)),
        sections.inference(benches.get("sessions", absent)),
    ]


def table(rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    return [*lines, ""]


def section_text(section: Section) -> list[str]:
    lines = [f"## {section.title}", ""]
    if section.missing is not None:
        return [*lines, f"**Not measured:** {section.missing}", ""]
    if section.chart is not None:
        lines += [f"![{section.chart.title}]({CHARTS}/{section.chart.file})", ""]
    lines += [section.shows, "", *table(section.table)]
    if section.checks:
        lines += ["Targets:", ""]
        for check in section.checks:
            verdict = "met" if check.met else "**not met**"
            lines.append(f"* {check.target} — measured {check.measured}: {verdict}")
        lines.append("")
    return lines


def markdown(results: dict[str, Any], built: list[Section]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "> Produced by `scripts/bench/report` (the charts are in `benchmarks/`, the raw",
        "> figures in `benchmarks/results.json`); run it again rather than edit this file.",
        "",
        f"Measured {results['date']}.",
        "",
    ]
    if results.get("quick"):
        lines += ["**Quick run** (`--quick`: small sizes, one round) — not figures to cite.", ""]
    lines += ["## Machine", "", *table([["", ""], *map(list, results["machine"].items())])]
    for section in built:
        lines += section_text(section)
    return "\n".join(lines).rstrip() + "\n"


def write_report(results: dict[str, Any], markdown_path: Path) -> list[Path]:
    """Write the markdown file and its charts; return the charts' paths."""
    folder = markdown_path.parent / CHARTS
    folder.mkdir(parents=True, exist_ok=True)
    built = build(results)
    drawn = []
    for section in built:
        if section.chart is not None and section.missing is None:
            draw(section.chart, folder / section.chart.file)
            drawn.append(folder / section.chart.file)
    markdown_path.write_text(markdown(results, built))
    return drawn
