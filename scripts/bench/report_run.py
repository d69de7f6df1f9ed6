"""Runs the benchmarks and writes the report (`docs/benchmarks.md` and its charts):
each benchmark in scripts/bench/ in its own process with `--json`, the machine's
details and the date, then scripts/bench/report_charts.py. Each benchmark's printed
output still shows as it runs.

A benchmark that cannot run (Chromium missing) or fails is left out of the charts,
and the report says why; the exit status is 1 when one failed.

Usage: scripts/bench/report [--quick] [--out docs/benchmarks.md]
       [--from-json docs/benchmarks/results.json  (draw again, run nothing)]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parents[1]
sys.path.insert(0, str(BENCH))

from report_charts import CHARTS, write_report  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")  # Debian's, as the end-to-end tests use (tests/e2e)
BROWSER_BENCHES = {"first_visit_unlimited", "first_visit_100mbps", "page_write", "page_read"}


def plan(quick: bool) -> dict[str, list[str]]:
    """Each benchmark's script and arguments; `quick`: small sizes, one round."""
    first = ["--rounds", "1", "--size-mb", "8"] if quick else ["--rounds", "3", "--size-mb", "90"]
    write = ["--sizes-mb", "8", "16", "--rounds", "1"] if quick else ["--sizes-mb", "64", "200"]
    read = ["--size-mb", "8", "--rounds", "1"] if quick else ["--size-mb", "64"]
    sessions = ["--rounds", "5", "--create-rounds", "1", "--models", "magika"] if quick else []
    return {
        "first_visit_unlimited": ["first_visit.py", *first, "--rate-mbps", "0"],
        "first_visit_100mbps": ["first_visit.py", *first, "--rate-mbps", "100"],
        "page_write": ["page_write.py", *write],
        "page_read": ["page_read.py", *read],
        "sessions": ["sessions.py", *sessions],
    }


def browser_missing() -> str | None:
    """Why the browser benchmarks cannot run here, or None."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return (
            f"Chromium was not found at {CHROMIUM}: install Debian's chromium (scripts/setup does)."
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: run scripts/setup."
    return None


def run_bench(name: str, command: list[str], work: Path) -> dict[str, Any]:
    """One benchmark in its own process; its figures, or why there are none."""
    out = work / f"{name}.json"
    print(f"\n=== {name}: {' '.join(command)}", flush=True)
    done = subprocess.run(
        [sys.executable, str(BENCH / command[0]), *command[1:], "--json", str(out)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    if done.returncode == 0 and out.is_file():
        figures: dict[str, Any] = json.loads(out.read_text())
        return figures
    tail = done.stderr.strip().splitlines()[-1:] or ["no error output"]
    print(done.stderr[-3000:], file=sys.stderr)
    return {"failed": True, "skipped": f"`{command[0]}` failed (exit {done.returncode}): {tail[0]}"}


# --- the machine -----------------------------------------------------------------------


def command_output(*command: str) -> str:
    """A tool's one-line answer (a version), or why there is none."""
    if shutil.which(command[0]) is None and not Path(command[0]).is_file():
        return "not found"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else "unknown"


def cpu_model() -> str:
    """Linux's /proc/cpuinfo, macOS's sysctl; the stdlib has no portable way and two
    lines do not merit a dependency."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    if sys.platform == "darwin":
        return command_output("sysctl", "-n", "machdep.cpu.brand_string")
    return platform.processor() or "unknown"


def memory() -> str:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "unknown"
    return f"{total / 2**30:.1f} GiB"


def os_name() -> str:
    try:
        pretty = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        pretty = ""
    return f"{pretty} ({platform.system()} {platform.release()}, {platform.machine()})".strip()


def package_version(*names: str) -> str:
    for name in names:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def node_package(name: str) -> str:
    wanted = json.loads((BENCH / "node" / "package.json").read_text())["dependencies"]
    return f"{name} {wanted.get(name, 'unknown')}"


def machine() -> dict[str, str]:
    return {
        "CPU": f"{cpu_model()} ({os.cpu_count()} logical cores)",
        "RAM": memory(),
        "OS": os_name(),
        "Chromium": command_output(str(CHROMIUM), "--version"),
        "Firefox ESR": command_output("firefox-esr", "--version"),
        "Python": platform.python_version(),
        "ONNX Runtime": package_version("onnxruntime-gpu", "onnxruntime"),
        "ONNX Runtime Web / Node": f"{node_package('onnxruntime-web')}, "
        f"{node_package('onnxruntime-node')}, Node {command_output('node', '--version')}",
    }


# --- the run ---------------------------------------------------------------------------


def collect(quick: bool) -> dict[str, Any]:
    missing = browser_missing()
    benches: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        for name, command in plan(quick).items():
            if missing and name in BROWSER_BENCHES:
                print(f"\n=== {name}: not run: {missing}", flush=True)
                benches[name] = {"skipped": missing}
                continue
            benches[name] = run_bench(name, command, Path(tmp))
    now = datetime.datetime.now(datetime.UTC)
    return {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "quick": quick,
        "machine": machine(),
        "benches": benches,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--from-json", type=Path, help="draw a saved results.json again")
    args = parser.parse_args()
    results = json.loads(args.from_json.read_text()) if args.from_json else collect(args.quick)
    charts = write_report(results, args.out)
    saved = args.out.parent / CHARTS / "results.json"
    if not args.from_json or args.from_json.resolve() != saved.resolve():
        saved.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out} and {len(charts)} charts in {args.out.parent / CHARTS}")
    left_out = {k: v["skipped"] for k, v in results["benches"].items() if "skipped" in v}
    for name, why in left_out.items():
        print(f"not measured: {name}: {why}", file=sys.stderr)
    return 1 if any(v.get("failed") for v in results["benches"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
