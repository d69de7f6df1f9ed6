"""A multi-gigabyte model end to end, in one run: an ONNX MatMul chain whose weights
(`--size-gb`, default 3) live in `model.onnx_data`, generated at run time in a temp
folder (never kept), then

* import: `webmodels import model.onnx` (streamed hashing and copying) against `cp` of
  the same two files; the importing CLI's peak RSS;
* sessions (scripts/bench/large_sessions.py): a host session over the manifest,
  created cold and again from the compile cache, against an in-process ONNX Runtime
  `InferenceSession` on the same files; worker start apart; outputs compared; peak RSS
  of the host and of its runtime worker; with `--compare-host DIR` (another checkout's
  `host/` folder, say main's) the same rounds for that code, alternating;
* page (real headless Chromium with the real extension and host): the page loads the
  data file by URL and integrity (a host download), reads it with `model.stream()`
  (MB/s; bytes sampled every MiB and compared), then takes `model.blob()` and reads
  samples back from it; peak RSS of the page's renderer, the browser and the host
  after each step (a renderer that held the whole file would show it).

Nothing of it runs in CI (tests/manifests/test_large.py is the 320 MiB version there).
Needs about 5 x the size free on the temp folder's disk.

Usage: .venv/bin/python scripts/bench/large.py [--size-gb 3 | --size-mb 500] [--tmp DIR]
       [--skip-import] [--skip-page] [--skip-sessions] [--rounds N] [--compare-host DIR]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from large_sessions import sessions_vs_ort
from page_browsers import chromium_page, serve_pages

from support.host import webmodels_env
from support.httpserver import ModelServer
from support.manifest_models import matmul_chain
from support.peak_rss import CLI_WITH_PEAK

WIDTH = 4096  # one layer: 4096 x 4096 float32 = 64 MiB
SAMPLE_EVERY = 1 << 20  # the page reports the byte at every MiB
# The page's reads: the byte at every SAMPLE_EVERY offset, the length, the seconds.
STREAM = """async (sha) => {
  const m = await webmodels.load({ sha256: sha }), step = STEP, samples = [];
  const t = performance.now(), reader = m.stream().getReader();
  let offset = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    for (let at = Math.ceil(offset / step) * step; at < offset + value.length; at += step)
      samples.push(value[at - offset]);
    offset += value.length;
  }
  return { size: offset, seconds: (performance.now() - t) / 1000, samples };
}""".replace("STEP", str(SAMPLE_EVERY))
BLOB = """async (sha) => {
  const m = await webmodels.load({ sha256: sha }), step = STEP;
  const t = performance.now(), blob = await m.blob(), seconds = (performance.now() - t) / 1000;
  const samples = [];
  for (let at = 0; at < blob.size; at += step * 64)
    samples.push(new Uint8Array(await blob.slice(at, at + 1).arrayBuffer())[0]);
  window.keptBlob = blob;  // alive while the RSS is read
  return { size: blob.size, seconds, samples };
}""".replace("STEP", str(SAMPLE_EVERY))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=3.0, help="external data, GiB")
    parser.add_argument("--size-mb", type=float, help="external data, MiB (instead of GiB)")
    parser.add_argument("--rounds", type=int, default=1, help="session rounds (alternating)")
    parser.add_argument(
        "--compare-host", type=Path, help="another checkout's host/ folder, timed beside this one"
    )
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--tmp", type=Path, help="temp folder's parent (default: the system's)")
    parser.add_argument("--skip-page", action="store_true")
    parser.add_argument("--skip-sessions", action="store_true")
    args = parser.parse_args()
    size = args.size_mb * (1 << 20) if args.size_mb else args.size_gb * (1 << 30)
    layers = max(1, math.ceil(size / (WIDTH * WIDTH * 4)))
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="webmodels-large-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        model = matmul_chain(work / "model", width=WIDTH, layers=layers)
        data = model.parent / "model.onnx_data"
        size = data.stat().st_size
        show(f"generated {size / 2**30:.2f} GiB external data ({layers} layers)", t)
        if not args.skip_import:
            import_vs_cp(work, model)
        if not args.skip_sessions:
            sessions_vs_ort(
                work / "sessions",
                model,
                WIDTH,
                rounds=args.rounds,
                compare=args.compare_host,
                peaks=tree_peaks,
            )
        if not args.skip_page:
            page_read(work / "page", data)
    return 0


def show(what: str, started: float | None = None) -> None:
    took = f": {time.perf_counter() - started:.1f} s" if started is not None else ""
    print(f"{what}{took}", flush=True)


def mbps(size: int, seconds: float) -> str:
    return f"{seconds:.1f} s, {size / 1e6 / max(seconds, 1e-9):.0f} MB/s"


def import_vs_cp(work: Path, model: Path) -> dict[str, Any]:
    size = sum(f.stat().st_size for f in model.parent.iterdir())
    t = time.perf_counter()
    shutil.copytree(model.parent, work / "copy")  # what `cp -r` does (copy_file_range)
    subprocess.run(["sync"], check=True)
    print(f"cp of the model folder: {mbps(size, time.perf_counter() - t)}", flush=True)
    shutil.rmtree(work / "copy")
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CLI_WITH_PEAK, "--json", "import", str(model)],
        env=webmodels_env(work / "home"),
        capture_output=True,
        text=True,
        check=True,
    )
    subprocess.run(["sync"], check=True)
    took = time.perf_counter() - t
    peak = float(done.stderr.rsplit("VmHWM:", 1)[1].split()[0]) / 1024
    print(f"webmodels import: {mbps(size, took)} (CLI peak RSS {peak:.0f} MiB)", flush=True)
    manifest: dict[str, Any] = json.loads(done.stdout)[0]["manifest"]
    return manifest


def page_read(work: Path, data: Path) -> None:
    size = data.stat().st_size
    digest = hashlib.sha256()
    with data.open("rb") as fh:
        while chunk := fh.read(8 << 20):
            digest.update(chunk)
    sha = digest.hexdigest()
    integrity = "sha256-" + base64.b64encode(digest.digest()).decode()
    with ModelServer() as pages, ModelServer() as models:
        serve_pages(pages)
        query = {"url": models.add_file("/model.onnx_data", data), "integrity": integrity}
        with chromium_page(work, pages) as evaluate:
            t = time.perf_counter()
            evaluate("(q) => webmodels.load(q)", query)
            print(f"page load by URL (host download): {mbps(size, time.perf_counter() - t)}")
            read = evaluate(STREAM, sha)
            check(data, read, SAMPLE_EVERY, size)
            print(f"page stream(): {mbps(size, read['seconds'])}; {peaks_line()}", flush=True)
            got = evaluate(BLOB, sha)
            check(data, got, SAMPLE_EVERY * 64, size)
            print(f"page blob(): {mbps(size, got['seconds'])}; {peaks_line()}", flush=True)


def check(data: Path, read: dict[str, Any], step: int, size: int) -> None:
    assert read["size"] == size, (read["size"], size)
    with data.open("rb") as fh:
        for n, byte in enumerate(read["samples"]):
            fh.seek(n * step)
            assert fh.read(1)[0] == byte, f"byte {n * step} differs"


def peaks_line() -> str:
    peaks = tree_peaks()
    kinds = ("renderer", "browser", "host", "gpu")
    return "peak RSS " + ", ".join(f"{k} {peaks.get(k, 0):.0f} MiB" for k in kinds)


def tree_peaks(root: int | None = None) -> dict[str, float]:
    """The largest VmHWM (MiB) of each kind of process under `root` (default: us)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, peaks = [root or os.getpid()], {}
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        kind, peak = kind_and_peak(pid)
        if kind:
            peaks[kind] = max(peaks.get(kind, 0.0), peak)
    return peaks


def kind_and_peak(pid: int) -> tuple[str, float]:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "", 0.0
    peak = next((int(x.split()[1]) / 1024 for x in status.splitlines() if x.startswith("VmHWM")), 0)
    line = b" ".join(argv).decode(errors="replace")
    if "webmodels.runtime.worker" in line:
        return "worker", peak
    if "webmodels" in line and "python" in line and "--type=" not in line:
        return "host", peak
    if "--type=renderer" in line:
        return "renderer", peak
    if "--type=gpu" in line:
        return "gpu", peak
    if "chrom" in line and "--type=" not in line:
        return "browser", peak
    return "", peak


if __name__ == "__main__":
    sys.exit(main())
