"""Compiled sessions: what the host's runtime costs and what it buys, side by side in
one run, on real models (docs/models.md: magika, silero-vad, the PP-OCRv4
detector).

* creation: `sessions.create` through the host protocol on a fresh store (cold: the
  host optimizes the graph and saves it) against a compile-cache hit (the same host
  again, and a new host process on the same store), and in-process ORT;
* inference: `sessions.run` round trips through a real host process (JSON frames on
  its pipes, base64 tensors, the runtime worker) against in-process ONNX Runtime,
  ONNX Runtime for Node (native) and ONNX Runtime Web (WASM, single-threaded) in
  Node. Host and in-process calls alternate in blocks; the Node runtimes run in a
child process.

Goals (issue 5): protocol overhead (host minus in-process) ≤ 2 ms per call for small
tensors; through the host, compute-bound models run faster than in WASM.

The Node packages (scripts/bench/node/package.json) are installed on first use with
`npm install --ignore-scripts` into scripts/bench/node/node_modules (git-ignored).

Usage: .venv/bin/python scripts/bench/sessions.py [--rounds 20] [--create-rounds 3]
       [--models magika,silero-vad,ocr-det] [--no-node]
       [--json PATH (the figures, for scripts/bench/report)]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).resolve().parent / "node"
sys.path.insert(0, str(ROOT / "tests"))

from sessions_models import MODELS, model_file  # noqa: E402
from sessions_report import (  # noqa: E402
    CREATION_HEAD,
    as_json,
    report_creation,
    report_inference,
)

from support.host import HostProcess, run_cli  # noqa: E402
from support.models import tiny_model  # noqa: E402

BLOCK = 5  # calls of one runtime in a row
SETTLE_S = 0.05  # between blocks: spinning ORT threads go idle
WIRE_TYPES = {np.dtype(t): t for t in ("float32", "float64", "int32", "int64", "uint8")}

Feeds = dict[str, np.ndarray]


@dataclass(frozen=True)
class Case:
    label: str
    model: str
    feeds: Callable[[np.random.Generator], Feeds]
    small: bool  # a small-tensor case: the protocol overhead goal applies


CASES = [
    Case(
        "silero-vad 512 samples",
        "silero-vad",
        lambda rng: {
            "input": rng.standard_normal((1, 512), dtype=np.float32),
            "state": np.zeros((2, 1, 128), np.float32),
            "sr": np.array(16000, np.int64),
        },
        small=True,
    ),
    Case(
        "magika x1",
        "magika",
        lambda rng: {"bytes": rng.integers(0, 257, (1, 2048), dtype=np.int32)},
        small=True,
    ),
    Case(
        "magika x64",
        "magika",
        lambda rng: {"bytes": rng.integers(0, 257, (64, 2048), dtype=np.int32)},
        small=False,
    ),
    Case(
        "ocr-det 1x3x320x320",
        "ocr-det",
        lambda rng: {"x": rng.standard_normal((1, 3, 320, 320), dtype=np.float32)},
        small=False,
    ),
]


# --- tensors on the wire (PROTOCOL.md: sessions.run) -----------------------------------


def to_wire(array: np.ndarray) -> dict[str, Any]:
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    dims = list(array.shape)
    return {"type": WIRE_TYPES[array.dtype], "dims": dims, "data": base64.b64encode(data).decode()}


def from_wire(tensor: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(tensor["type"]).newbyteorder("<")
    return np.frombuffer(base64.b64decode(tensor["data"]), dtype=dtype).reshape(tensor["dims"])


# --- session creation ------------------------------------------------------------------


@dataclass
class Creation:
    cold: list[float] = field(default_factory=list)
    hit: list[float] = field(default_factory=list)
    hit_new_host: list[float] = field(default_factory=list)
    first_new_host: list[float] = field(default_factory=list)  # includes the worker start
    first_tiny: list[float] = field(default_factory=list)  # worker start + a tiny model
    in_process: list[float] = field(default_factory=list)
    cold_was_hit: int = 0
    provider: str = ""


def quiet_store(home: Path) -> Path:
    """A store folder whose hosts do not compile in the background: the first
    sessions.create is really cold, and no compile competes with the timed runs."""
    home.mkdir()
    # support.host.webmodels_env points WEBMODELS_CONFIG at this file.
    (home / "no-config.toml").write_text("[sessions]\nbackground_compile = false\n")
    return home


def timed_create(host: HostProcess, sha256: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    result = host.result("sessions.create", {"sha256": sha256})
    elapsed = time.perf_counter() - started
    host.result("sessions.release", {"session_id": result["session_id"]})
    return elapsed, result


def bench_creation(path: Path, sha256: str, rounds: int, work: Path) -> Creation:
    found = Creation()
    data = path.read_bytes()
    tiny_path = tiny_model(work / "tiny.onnx")
    tiny = hashlib.sha256(tiny_path.read_bytes()).hexdigest()
    for i in range(rounds):
        home = quiet_store(work / f"create-{i}")  # a fresh store: nothing compiled yet
        run_cli(home, "import", str(path), str(tiny_path))
        host = HostProcess(home)
        try:
            # The first session of a host starts its runtime worker: time that
            # apart, with a tiny model, so `cold` is the compile alone.
            found.first_tiny.append(timed_create(host, tiny)[0])
            elapsed, result = timed_create(host, sha256)
            found.cold.append(elapsed)
            found.cold_was_hit += result["compiled_cache_hit"] is True
            found.provider = result["provider"]
            found.hit.append(timed_create(host, sha256)[0])
        finally:
            host.close()
        host = HostProcess(home)  # a browser restart: a new host, the same store
        try:
            found.first_new_host.append(timed_create(host, sha256)[0])  # worker start too
            found.hit_new_host.append(timed_create(host, sha256)[0])
        finally:
            host.close()
        shutil.rmtree(home)
        started = time.perf_counter()
        ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        found.in_process.append(time.perf_counter() - started)
    return found


# --- inference -------------------------------------------------------------------------


@dataclass
class Inference:
    host: list[float] = field(default_factory=list)
    in_process: list[float] = field(default_factory=list)
    node: dict[str, list[float]] = field(default_factory=dict)  # runtime -> seconds
    max_diff: dict[str, float] = field(default_factory=dict)  # against in-process


def max_diff(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    diffs = [
        float(np.max(np.abs(outputs[k].astype(np.float64) - v), initial=0.0))
        for k, v in reference.items()
    ]
    return max(diffs)


def bench_inference(
    host: HostProcess, session_id: str, path: Path, feeds: Feeds, rounds: int
) -> tuple[Inference, dict[str, Any], dict[str, np.ndarray]]:
    found = Inference()
    local = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in local.get_outputs()]
    params = {"session_id": session_id, "feeds": {k: to_wire(v) for k, v in feeds.items()}}
    reference = dict(zip(names, local.run(None, feeds), strict=True))

    # Alternating blocks of calls, not single calls: ORT's idle threads spin for a
    # while after a run and would slow the other runtime down on a small machine,
    # while blocks still share whatever else the machine is doing.
    def host_run() -> dict[str, Any]:
        result: dict[str, Any] = host.result("sessions.run", params)
        return result

    def local_run() -> None:
        local.run(None, feeds)

    reply = host_run()
    for _ in range(2):  # warm-up
        host_run()
        local_run()
    for done in range(0, rounds, BLOCK):
        for call, times in ((host_run, found.host), (local_run, found.in_process)):
            time.sleep(SETTLE_S)
            for _ in range(min(BLOCK, rounds - done)):
                started = time.perf_counter()
                call()
                times.append(time.perf_counter() - started)
    outputs = {k: from_wire(v) for k, v in reply["outputs"].items()}
    found.max_diff["host"] = max_diff(outputs, reference)
    return found, params["feeds"], reference


def ensure_node_packages() -> bool:
    if (NODE_DIR / "node_modules" / "onnxruntime-web" / "package.json").is_file():
        return True
    npm = shutil.which("npm")
    if npm is None:
        print("npm is missing: skipping ONNX Runtime Web and ONNX Runtime for Node")
        return False
    command = [npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--no-package-lock"]
    done = subprocess.run(command, cwd=NODE_DIR, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"npm install failed; skipping the Node runtimes:\n{done.stderr[-1000:]}")
    return done.returncode == 0


def bench_node(
    runtime: str, path: Path, wire_feeds: dict[str, Any], rounds: int, work: Path
) -> tuple[list[float], dict[str, np.ndarray]]:
    feeds_file = work / "feeds.json"
    feeds_file.write_text(json.dumps(wire_feeds))
    command = ["node", str(NODE_DIR / "ort-run.mjs"), "--runtime", runtime, "--model", str(path)]
    command += ["--feeds", str(feeds_file), "--rounds", str(rounds)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800)
    result = json.loads(done.stdout)
    outputs = {k: from_wire(v) for k, v in result["outputs"].items()}
    return [ms / 1000 for ms in result["run_ms"]], outputs


# --- the run ---------------------------------------------------------------------------


def run_inference(
    cases: list[Case],
    paths: dict[str, Path],
    digests: dict[str, str],
    *,
    rounds: int,
    runtimes: list[str],
    work: Path,
) -> list[tuple[Case, Inference]]:
    """Every case through one host process (one store holding every model)."""
    home = quiet_store(work / "inference")
    for path in paths.values():
        run_cli(home, "import", str(path))
    host = HostProcess(home)
    rng = np.random.default_rng(0)
    rows = []
    try:
        for case in cases:
            path = paths[case.model]
            created = host.result("sessions.create", {"sha256": digests[case.model]})
            found, wire, reference = bench_inference(
                host, created["session_id"], path, case.feeds(rng), rounds
            )
            host.result("sessions.release", {"session_id": created["session_id"]})
            for runtime in runtimes:
                found.node[runtime], outputs = bench_node(runtime, path, wire, rounds, work)
                found.max_diff[runtime] = max_diff(outputs, reference)
            rows.append((case, found))
    finally:
        host.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="inference calls per runtime")
    parser.add_argument("--create-rounds", type=int, default=3, help="fresh stores for creation")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--no-node", action="store_true", help="skip the Node runtimes")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    wanted = [m for m in args.models.split(",") if m]
    if unknown := set(wanted) - set(MODELS):
        parser.error(f"unknown models: {', '.join(sorted(unknown))} (known: {', '.join(MODELS)})")
    runtimes = ["node", "web"] if not args.no_node and ensure_node_packages() else []
    print(f"onnxruntime {ort.__version__}, {args.rounds} calls, {args.create_rounds} stores")

    paths = {name: model_file(name) for name in wanted}
    digests = {name: hashlib.sha256(p.read_bytes()).hexdigest() for name, p in paths.items()}
    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as tmp:
        work = Path(tmp)
        print("\nsession creation, median ms")
        print(CREATION_HEAD)
        creations: dict[str, Creation] = {}
        for name in wanted:
            found = bench_creation(paths[name], digests[name], args.create_rounds, work)
            report_creation(name, found)
            creations[name] = found
        cases = [c for c in CASES if c.model in wanted]
        rows = run_inference(
            cases, paths, digests, rounds=args.rounds, runtimes=runtimes, work=work
        )
    report_inference(rows, runtimes)
    if args.json:
        found_json = as_json(creations, rows, runtimes=runtimes)
        args.json.write_text(json.dumps(found_json, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
