"""A model with 320 MiB of external data (3 GiB with ``WEBMODELS_LONG=1``: the long
run, docs/manifests.md), end to end: import (streamed), a host session over the
manifest, outputs equal to in-process ONNX Runtime. Prints the wall times and the peak
memory of the importing CLI and of the host."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from support.host import HostProcess, webmodels_env
from support.manifest_models import matmul_chain, reference_run
from support.peak_rss import CLI_WITH_PEAK as IMPORT_AND_REPORT
from support.runtime_models import wire

# 5 x 4096 x 4096 float32 = 320 MiB in model.onnx_data; the long run: 48 layers, 3 GiB.
LONG = os.environ.get("WEBMODELS_LONG") == "1"
WIDTH, LAYERS = 4096, 48 if LONG else 5
SIZE_MIB = LAYERS * WIDTH * WIDTH * 4 >> 20
TIMEOUT_S = 1800 if LONG else 300


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@pytest.mark.slow
def test_a_large_external_data_model_imports_and_runs(home: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    model = matmul_chain(tmp_path / "big", width=WIDTH, layers=LAYERS)
    generated = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_REPORT, "--json", "import", str(model)],
        env=webmodels_env(home),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=True,
    )
    import_s = time.monotonic() - generated
    imported = json.loads(done.stdout)[0]["manifest"]
    cli_peak = float(done.stderr.rsplit("VmHWM:", 1)[1].split()[0]) / 1024
    assert imported["size"] > SIZE_MIB << 20

    # The first session does not wait for the compiled graph (runtime/loader.py): the
    # idle-priority background compile saves it, here at once.
    (home / "no-config.toml").write_text(
        "[sessions]\nbackground_delay_s = 0\nbackground_idle_s = 0.2\n"
    )
    host = HostProcess(home)
    try:
        x = np.random.default_rng(3).standard_normal((1, WIDTH)).astype(np.float32)
        begun = time.monotonic()
        cold = host.result(
            "sessions.create", {"manifest": imported["sha256"], "graph_optimization_level": "basic"}
        )
        create_s = time.monotonic() - begun
        graph = next(f["sha256"] for f in imported["files"] if f["role"] == "graph")
        while f"compiled {graph[:12]}" not in host.logged():
            assert "failed" not in host.logged(), host.logged()
            assert time.monotonic() - begun < TIMEOUT_S, "no background compile"
            time.sleep(0.1)
        compile_s = time.monotonic() - begun
        begun = time.monotonic()
        cached = host.result(
            "sessions.create", {"manifest": imported["sha256"], "graph_optimization_level": "basic"}
        )
        cached_s = time.monotonic() - begun
        assert (cold["compiled_cache_hit"], cached["compiled_cache_hit"]) == (False, True)
        params = {"session_id": cached["session_id"], "feeds": {"x": wire("float32", x)}}
        out = host.result("sessions.run", params)["outputs"]["y"]
        got = np.frombuffer(base64.b64decode(out["data"]), np.float32).reshape(out["dims"])
        host_peak = peak_rss_mib(host.proc.pid)
    finally:
        host.kill()
    np.testing.assert_allclose(got, reference_run(model, x), rtol=1e-4, atol=1e-5)
    print(
        f"\n{SIZE_MIB} MiB external data: generate {generated - started:.1f} s, "
        f"import {import_s:.1f} s "
        f"(CLI peak RSS {cli_peak:.0f} MiB), session create {create_s:.1f} s cold, "
        f"compiled in the background after {compile_s:.1f} s, "
        f"{cached_s:.1f} s cached, host peak RSS "
        f"{host_peak:.0f} MiB, whole test {time.monotonic() - started:.1f} s"
    )
    assert host_peak < 200, "the host holds no model file in memory"
