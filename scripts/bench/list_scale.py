"""Listing a big store: 100 against 10,000 stored files, side by side.

For each size a store is built with `support.big_store` (tiny files, six to a model
name), then measured through the real programs: host start to the `hello` reply,
`manage.list` first page and every page, `manage.stats`, a page's `models.list`,
`models.availability` of a file another site holds (the privacy-relevant COS call:
it must not grow with the store), and `webmodels ls` as a whole process. Medians of
`--runs` rounds. The popup's open time is measured by tests/e2e/test_popup_scale.py.
The host package's bytecode is compiled first, as an installed host has it (pip
compiles it at install, scripts/setup for a checkout): where PYTHONDONTWRITEBYTECODE
is set, a start would otherwise compile every module again.

Usage: .venv/bin/python scripts/bench/list_scale.py [--sizes 100,10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import webmodels  # noqa: E402
from support.big_store import build_store  # noqa: E402
from support.host import HostProcess, run_cli  # noqa: E402
from webmodels.app import build_host  # noqa: E402
from webmodels.config import load_config  # noqa: E402
from webmodels.permissions import tighten  # noqa: E402

A, B = "http://a.localhost:8000", "http://b.localhost:8000"
SITES = (f"{A} {A}", f"{B} {B}")
PAGE_A = {"partition": {"top_site": A, "origin": A}, "trusted": False}


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def all_pages(host: HostProcess, method: str, **fields: object) -> int:
    count, cursor = 0, None
    while True:
        result = host.result(method, {"cursor": cursor} if cursor else {}, **fields)
        count += len(result["models"])
        cursor = result["next_cursor"]
        if cursor is None:
            return count


def measure(size: int, runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        built = build_store(home / "store-v2", size, sites=SITES)
        held_by_b = built.of_site(SITES[1], SITES)[0]
        figures: dict[str, list[float]] = {}
        for _ in range(runs):
            for name, ms in one_round(home, held_by_b).items():
                figures.setdefault(name, []).append(ms)
        return {name: statistics.median(values) for name, values in figures.items()}


def in_process_start(home: Path) -> float:
    """What a host start does beyond starting Python: tighten modes, open the store,
    build the host (the interpreter's own start dominates on a busy machine)."""
    env = {"WEBMODELS_HOME": str(home), "WEBMODELS_CONFIG": str(home / "no-config.toml")}
    config = load_config(env=env)
    started = time.perf_counter()
    tighten(config)
    host = build_host(config)
    took = (time.perf_counter() - started) * 1000
    host.close()
    return took


def one_round(home: Path, held_by_b: str) -> dict[str, float]:
    started = time.perf_counter()
    host = HostProcess(home)
    host.result("hello")
    figures = {"host start to hello": (time.perf_counter() - started) * 1000}
    try:
        figures["manage.list first page"] = timed(lambda: host.result("manage.list"))
        figures["manage.list all pages"] = timed(lambda: all_pages(host, "manage.list"))
        figures["manage.stats"] = timed(lambda: host.result("manage.stats"))
        figures["models.list all pages (site A)"] = timed(
            lambda: all_pages(host, "models.list", context=PAGE_A)
        )
        query = {"query": {"sha256": held_by_b}}
        calls = [
            timed(lambda: host.result("models.availability", query, context=PAGE_A))
            for _ in range(50)
        ]
        figures["models.availability (B's file, asked by A)"] = statistics.median(calls)
    finally:
        host.close()
    figures["webmodels ls (process)"] = timed(lambda: run_cli(home, "ls"))
    figures["host start in-process (tighten, build_host)"] = in_process_start(home)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,10000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    compileall.compile_dir(Path(webmodels.__file__).parent, quiet=1)  # the host measured
    results = {size: measure(size, args.runs) for size in sizes}
    names = list(results[sizes[0]])
    width = max(len(n) for n in names)
    print(f"{'median ms':<{width}}" + "".join(f"{f'{s:,} files':>14}" for s in sizes))
    for name in names:
        print(f"{name:<{width}}" + "".join(f"{results[s][name]:>14.1f}" for s in sizes))


if __name__ == "__main__":
    main()
