"""SessionManager in this process (the worker is still a real subprocess): provider
choice, settings, and what happens to calls that were beside a stopped one."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from support.runtime_models import identity_model, save, slow_model
from webmodels.config import Config
from webmodels.errors import HostError
from webmodels.runtime.loader import choose_provider
from webmodels.runtime.probe import ProbeResult, ProviderProbe
from webmodels.runtime.sessions import SessionManager
from webmodels.runtime.settings import SessionSettings
from webmodels.runtime.tensors import Tensor
from webmodels.store.store import Store

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


def test_choose_provider() -> None:
    gpu = (TRT, CUDA, CPU)
    assert choose_provider(None, gpu) == TRT
    assert choose_provider([], (CPU,)) == CPU
    assert choose_provider(["cuda", "cpu"], gpu) == CUDA
    assert choose_provider(["webgpu", "CUDAExecutionProvider"], gpu) == CUDA
    assert choose_provider(["cuda"], (CPU,)) == CPU  # none usable: the CPU
    assert choose_provider(None, ()) == CPU  # the probe failed


def test_settings_from_the_config_file() -> None:
    settings = SessionSettings.from_config({"sessions": {"idle_s": 1, "max_total": 2}})
    assert (settings.idle_s, settings.max_total) == (1.0, 2)
    assert settings.memory_limit >= 1 << 30
    for bad in ({"idle": 1}, {"max_total": -1}, {"max_total": 1.5}, {"background_compile": 1}):
        with pytest.raises(HostError):
            SessionSettings.from_config({"sessions": bad})
    with pytest.raises(HostError):
        SessionSettings.from_config({"sessions": 3})


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[SessionManager, Store, Path]]:
    store = Store.open(Config(home=tmp_path / "home", log_dir=tmp_path / "logs"))
    probe = ProviderProbe(runner=lambda timeout: ProbeResult("1.31.1", (CPU,), (CPU,)))
    settings = SessionSettings(run_timeout_s=1.0, background_compile=False)
    sessions = SessionManager(store, probe, settings, log_path=tmp_path / "worker.log").start()
    yield sessions, store, tmp_path
    sessions.close()
    store.close()


def test_calls_beside_a_stopped_one_are_retried_in_a_fresh_worker(
    manager: tuple[SessionManager, Store, Path],
) -> None:
    sessions, store, folder = manager
    slow = store.import_file(save(slow_model(), folder / "slow.onnx")).model.digest
    ident = store.import_file(save(identity_model("float32"), folder / "id.onnx")).model.digest
    s_slow = sessions.create(slow, partition="p")
    s_other = sessions.create(slow, partition="p")
    s_id = sessions.create(ident, partition="p")
    first = sessions.runtime.current()
    results: list[object] = []

    def run_slow() -> None:
        try:
            sessions.run(s_slow.session_id, "p", {"n": scalar(10**10)})  # never ends
        except HostError as exc:
            results.append(exc.code)

    thread = threading.Thread(target=run_slow)
    thread.start()
    time.sleep(0.85)
    # ~0.2 s of work (quiet machine), in flight when the call above passes its 1 s limit
    # and the worker is killed under both: this one runs again in a fresh worker and
    # succeeds. Short enough to stay under the same 1 s limit on a machine 4x slower.
    out = sessions.run(s_other.session_id, "p", {"n": scalar(300_000)})
    assert np.frombuffer(out["y"].data, np.float32).tolist() == [300_000.0]  # type: ignore[arg-type]
    thread.join()
    assert results == ["busy"]
    second = sessions.runtime.current()
    assert second is not None and second is not first
    feeds = {"x": Tensor("float32", (1, 1, 1), np.float32(2.5).tobytes())}
    assert sessions.run(s_id.session_id, "p", feeds)["y"].data == np.float32(2.5).tobytes()
    with pytest.raises(HostError) as caught:
        sessions.run(s_id.session_id, "q", feeds)
    assert caught.value.code == "session_not_found"
    assert sessions.compiled(ident)  # the default key (CPU, "all") is in the cache


def scalar(n: int) -> Tensor:
    return Tensor("int64", (), np.array(n, np.int64).tobytes())


def test_models_over_the_size_limit_are_too_large(tmp_path: Path) -> None:
    store = Store.open(Config(home=tmp_path / "home", log_dir=tmp_path / "logs"))
    probe = ProviderProbe(runner=lambda timeout: ProbeResult("1.31.1", (CPU,), (CPU,)))
    settings = SessionSettings(max_model_bytes=100, background_compile=False)
    sessions = SessionManager(store, probe, settings)
    try:
        digest = store.import_file(save(identity_model("float32"), tmp_path / "m.onnx"))
        with pytest.raises(HostError) as caught:
            sessions.create(digest.model.digest, partition="p")
        assert caught.value.code == "too_large"
    finally:
        sessions.close()
        store.close()


def test_the_host_side_never_imports_onnx_runtime() -> None:
    code = (
        "import sys, webmodels.app, webmodels.methods.sessions; "
        "print(sorted(m for m in ('onnxruntime', 'numpy', 'onnx') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
