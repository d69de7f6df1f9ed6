"""The sessions part of scripts/bench/large.py: in-process ONNX Runtime against a host
session of the same external-data model, cold and cached, for this checkout's host
and (``--compare-host DIR``: another checkout's ``host/`` folder, say main's) another
one, in alternating rounds of one run so that both see the same machine.

Each round imports the model into a fresh store, starts a host and times

* worker start: the first session, of a tiny model (a runtime worker starts);
* cold: the large model's first session (the worker runs already);
* cache ready: until the compile cache holds the model's compiled graph (saved while
  the page waited, or afterwards by the idle-priority background compile);
* cached: a session from the compile cache;

and checks the outputs against in-process ORT. The compiled weights' size is printed
(0: the cached graph reads the model's own file)."""

from __future__ import annotations

import base64
import json
import queue
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from support.host import HostProcess, webmodels_env
from support.manifest_models import matmul_chain
from support.runtime_models import wire

CONFIG = "[sessions]\nbackground_delay_s = 0\nbackground_idle_s = 0.5\n"
LEVEL = "basic"


def call(host: HostProcess, method: str, params: dict[str, Any], timeout: float) -> Any:
    """`host.result` with a longer wait (a cold compile of GBs takes minutes here)."""
    host._next_id += 1
    host.send({"id": host._next_id, "method": method, "params": params})
    deadline = time.monotonic() + timeout
    while True:
        try:
            item = host.frames.get(timeout=max(1.0, deadline - time.monotonic()))
        except queue.Empty:
            raise SystemExit(f"{method}: no reply in {timeout:.0f} s") from None
        if isinstance(item, Exception):
            raise item
        if item.get("id") == host._next_id and "event" not in item:
            assert item["ok"], item
            return item["result"]


def in_process(model: Path, x: np.ndarray) -> tuple[float, np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    t = time.perf_counter()
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    took = time.perf_counter() - t
    return took, np.asarray(session.run(None, {"x": x})[0])


def sessions_vs_ort(
    work: Path,
    model: Path,
    width: int,
    *,
    rounds: int,
    compare: Path | None,
    peaks: Callable[[int], dict[str, float]],
) -> dict[str, list[dict[str, float]]]:
    """Prints every round and a summary (``peaks``: peak RSS by kind of process under
    a pid); returns the figures."""
    x = np.random.default_rng(3).standard_normal((1, width)).astype(np.float32)
    tiny = matmul_chain(work / "tiny", width=64, layers=1)
    ort_s, want = in_process(model, x)  # reads the files once: the page cache is warm
    ort_times = [in_process(model, x)[0]]
    variants = {"this": None, **({"compare": compare} if compare else {})}
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for n in range(rounds):
        for name, code in variants.items():
            got = one_round(work / f"home-{name}-{n}", model, tiny, x, code, peaks)
            figures[name].append(got.pop("figures"))
            np.testing.assert_allclose(got["y"], want, rtol=1e-4, atol=1e-5)
            print(f"round {n + 1} {name}: " + shown(figures[name][-1]), flush=True)
        ort_times.append(in_process(model, x)[0])
    print(
        f"in-process ORT InferenceSession: first {ort_s:.2f} s, then median "
        f"{statistics.median(ort_times):.2f} s; outputs equal (rtol 1e-4)"
    )
    base = statistics.median(ort_times)
    for name, rows in figures.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(
            f"median {name}: {shown(med)}; cold / in-process {med['cold'] / base:.2f}x, "
            f"(cold + worker start) / in-process {(med['cold'] + med['worker']) / base:.2f}x"
        )
    return figures


def shown(f: dict[str, float]) -> str:
    return (
        f"worker start {f['worker']:.2f} s, cold {f['cold']:.2f} s, cache ready after "
        f"{f['ready']:.1f} s, cached {f['cached']:.2f} s, compiled weights "
        f"{f['weights_mb']:.0f} MB, peak RSS host {f['host_mib']:.0f} MiB, "
        f"worker {f['worker_mib']:.0f} MiB"
    )


def one_round(
    home: Path,
    model: Path,
    tiny: Path,
    x: np.ndarray,
    code: Path | None,
    peaks: Callable[[int], dict[str, float]],
) -> dict[str, Any]:
    home.mkdir(parents=True)
    (home / "no-config.toml").write_text(CONFIG)
    extra = {"PYTHONPATH": f"{code}:{Path(__file__).parents[2] / 'tests'}"} if code else {}
    manifests = [import_one(home, path, extra) for path in (tiny, model)]
    host = HostProcess(home, **extra)
    try:
        t = time.perf_counter()
        call(
            host,
            "sessions.create",
            {"manifest": manifests[0], "graph_optimization_level": LEVEL},
            600,
        )
        worker = time.perf_counter() - t
        params = {"manifest": manifests[1], "graph_optimization_level": LEVEL}
        t = time.perf_counter()
        cold = call(host, "sessions.create", params, 1800)
        cold_s = time.perf_counter() - t
        assert not cold["compiled_cache_hit"]
        ready = wait_for_cache(host, t, 2)
        t = time.perf_counter()
        cached = call(host, "sessions.create", params, 1800)
        cached_s = time.perf_counter() - t
        assert cached["compiled_cache_hit"], "no cache hit after the compile"
        run = {"session_id": cached["session_id"], "feeds": {"x": wire("float32", x)}}
        out = call(host, "sessions.run", run, 600)["outputs"]["y"]
        rss = peaks(host.proc.pid)
    finally:
        host.kill()
    y = np.frombuffer(base64.b64decode(out["data"]), np.float32).reshape(out["dims"])
    weights = compiled_weights(home)
    figures = {
        "worker": worker,
        "cold": cold_s,
        "ready": ready,
        "cached": cached_s,
        "weights_mb": weights / 1e6,
        "host_mib": rss.get("host", 0.0),
        "worker_mib": rss.get("worker", 0.0),
    }
    return {"y": y, "figures": figures}


def import_one(home: Path, model: Path, extra: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "webmodels", "--json", "import", str(model)],
        env=webmodels_env(home, **extra),
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(done.stdout)[0]["manifest"]["sha256"])


def wait_for_cache(host: HostProcess, since: float, entries: int) -> float:
    """Seconds from ``since`` until the host logged its second compiled graph (the tiny
    model's and the large one's)."""
    deadline = time.monotonic() + 1800
    while host.logged().count("compile cache: saved") < entries:
        if time.monotonic() > deadline:
            raise SystemExit("the compile cache never got the model")
        time.sleep(0.05)
    return time.perf_counter() - since


def compiled_weights(home: Path) -> int:
    """Bytes of compiled weights the store keeps (read after the host is gone)."""
    from webmodels.config import Config
    from webmodels.store.store import Store

    store = Store.open(Config(home=home, log_dir=home / "bench-logs"))
    try:
        rows = store.index.query(
            "SELECT COALESCE(SUM(o.size), 0) AS size FROM derived d "
            "JOIN objects o ON o.sha256 = d.weights"
        )
        return int(rows[0]["size"])
    finally:
        store.close()
