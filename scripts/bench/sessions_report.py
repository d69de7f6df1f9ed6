"""The sessions benchmark's printing: its tables of medians, its verdicts on the goals,
and its figures as JSON for scripts/bench/report (sessions.py measures)."""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import onnxruntime as ort

if TYPE_CHECKING:
    from sessions import Case, Creation, Inference


def median_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def fmt(value: float) -> str:
    return f"{value:9.2f}" if value < 1000 else f"{value:9.0f}"


CREATION_HEAD = (
    f"{'model':<12}{'cold':>9}{'hit':>9}{'cold/hit':>10}{'new host':>9}{'+worker':>9}"
    f"{'in-proc':>9}{'tiny+wk':>9}   provider"
)


def report_creation(name: str, found: Creation) -> None:
    """cold/hit: in a host whose worker runs; new host: a hit in a new host process
    (+worker: its first create, which starts the worker); in-proc: ORT in this
    process, optimizing; tiny+wk: a new host's first create of a tiny model."""
    cold, hit = median_ms(found.cold), median_ms(found.hit)
    line = f"{name:<12}{fmt(cold)}{fmt(hit)}{cold / hit:9.1f}x{fmt(median_ms(found.hit_new_host))}"
    line += f"{fmt(median_ms(found.first_new_host))}{fmt(median_ms(found.in_process))}"
    line += f"{fmt(median_ms(found.first_tiny))}   {found.provider}"
    if found.cold_was_hit:
        line += f" ({found.cold_was_hit} cold creates were cache hits: background compile?)"
    print(line)


def report_inference(rows: list[tuple[Case, Inference]], runtimes: list[str]) -> None:
    titles = {"node": "ort-node", "web": "wasm"}
    print("\ninference, median ms per call")
    head = f"{'case':<24}{'host':>9}{'in-proc':>9}{'overhead':>9}"
    head += "".join(f"{titles[r]:>9}" for r in runtimes)
    head += "   wasm/host" if "web" in runtimes else ""
    print(head + "   max |diff| (host, node runtimes)")
    overheads, speedups = [], []
    for case, found in rows:
        host, local = median_ms(found.host), median_ms(found.in_process)
        line = f"{case.label:<24}{fmt(host)}{fmt(local)}{fmt(host - local)}"
        line += "".join(fmt(median_ms(found.node[r])) for r in runtimes)
        if "web" in runtimes:
            ratio = median_ms(found.node["web"]) / host
            line += f"{ratio:11.1f}x"
            if not case.small:
                speedups.append((case.label, ratio))
        print(line + "   " + " ".join(f"{v:.1e}" for v in found.max_diff.values()))
        if case.small:
            best = (min(found.host) - min(found.in_process)) * 1000
            overheads.append((case.label, host - local, best))
    print()
    # The fastest calls of each runtime are the ones that other load on the machine
    # left alone: their difference is the steadier estimate of the overhead.
    for label, overhead, best in overheads:
        verdict = "met" if best <= 2.0 else "NOT met"
        print(
            f"goal: protocol overhead <= 2 ms ({label}): {best:.2f} ms fastest calls, "
            f"{overhead:.2f} ms medians, {verdict}"
        )
    for label, ratio in speedups:
        verdict = "met" if ratio > 1.0 else "NOT met"
        print(f"goal: host faster than WASM ({label}): {ratio:.1f}x, {verdict}")


def as_json(
    creations: dict[str, Creation], rows: list[tuple[Case, Inference]], *, runtimes: list[str]
) -> dict[str, Any]:
    """Every measurement in seconds, for scripts/bench/report; `node` and `web` are
    ONNX Runtime for Node (native) and ONNX Runtime Web (WASM)."""
    inference = [
        {
            "case": case.label,
            "model": case.model,
            "small": case.small,
            "seconds": {"host": found.host, "in_process": found.in_process, **found.node},
            "max_diff": found.max_diff,
        }
        for case, found in rows
    ]
    creation = {name: asdict(found) for name, found in creations.items()}
    return {
        "bench": "sessions",
        "onnxruntime": ort.__version__,
        "runtimes": runtimes,
        "creation": creation,
        "inference": inference,
    }
