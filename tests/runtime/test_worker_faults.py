"""Models that crash the runtime, exhaust its memory, run too long, or point outside
themselves: the host survives each, answers with the documented code, and the next
request works."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from support.host import HostProcess
from support.models import real_model
from support.runtime_models import (
    crashing_model,
    external_data_model,
    memory_hog_model,
    slow_model,
    wire,
)

PAGE = {
    "partition": {"top_site": "https://a.example", "origin": "https://a.example"},
    "user_activation": True,
    "trusted": False,
}
MEMORY_LIMIT = 1 << 30


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return {
        "crash.onnx": crashing_model().SerializeToString(),
        "hog.onnx": memory_hog_model().SerializeToString(),
        "slow.onnx": slow_model().SerializeToString(),
        "magika.onnx": real_model("magika").read_bytes(),
    }


@pytest.fixture(scope="module")
def host(
    tmp_path_factory: pytest.TempPathFactory, models: dict[str, bytes]
) -> Iterator[HostProcess]:
    home = tmp_path_factory.mktemp("home")
    (home / "no-config.toml").write_text(
        f"[sessions]\nworker_memory_bytes = {MEMORY_LIMIT}\nrun_timeout_s = 1.5\n"
        "background_compile = false\n"
    )
    folder = tmp_path_factory.mktemp("preinstalled")
    for name, data in models.items():
        (folder / name).write_bytes(data)
    listing = [{"file": name} for name in models]
    (folder / "models.json").write_text(json.dumps({"version": 1, "models": listing}))
    # The crash stand-in: only a worker started with this variable honours it.
    proc = HostProcess(home, WEBMODELS_PREINSTALLED=str(folder), WEBMODELS_WORKER_TEST_HOOKS="1")
    yield proc
    proc.kill()


def create(host: HostProcess, data: bytes) -> str:
    return str(host.result("sessions.create", {"sha256": digest(data)}, context=PAGE)["session_id"])


def run(host: HostProcess, session_id: str, feeds: dict[str, Any]) -> Any:
    return host.call("sessions.run", {"session_id": session_id, "feeds": feeds}, context=PAGE)


def magika_works(host: HostProcess, session_id: str) -> None:
    feeds = {"bytes": wire("int32", np.zeros((1, 2048), np.int32))}
    reply = run(host, session_id, feeds)
    assert reply["ok"], reply


def test_a_crash_kills_the_worker_not_the_host(host: HostProcess, models: dict[str, bytes]) -> None:
    bystander = create(host, models["magika.onnx"])
    magika_works(host, bystander)
    crasher = create(host, models["crash.onnx"])
    reply = run(host, crasher, {"x": wire("float32", np.ones((1, 1, 2), np.float32))})
    assert not reply["ok"] and reply["error"]["code"] == "session_crashed", reply
    assert "SIGSEGV" in host.logged()  # a page gets the code; the log says why
    assert host.proc.poll() is None
    assert host.result("hello")["protocol_version"] == 1
    # The crashed session is gone; the other one is rebuilt in a fresh worker.
    again = run(host, crasher, {"x": wire("float32", np.ones((1, 1, 2), np.float32))})
    assert again["error"]["code"] == "session_not_found"
    magika_works(host, bystander)
    host.result("sessions.release", {"session_id": bystander}, context=PAGE)


def test_exhausting_memory_is_too_large_and_the_next_call_works(
    host: HostProcess, models: dict[str, bytes]
) -> None:
    hog = create(host, models["hog.onnx"])
    huge = {"shape": wire("int64", np.array([1 << 31], np.int64))}  # 8 GiB of float32
    reply = run(host, hog, huge)
    assert reply["error"]["code"] == "too_large", reply
    assert "more memory than the runtime worker's limit" in host.logged()
    small = run(host, hog, {"shape": wire("int64", np.array([4], np.int64))})
    assert small["ok"], small
    assert small["result"]["outputs"]["y"]["dims"] == [4]
    host.result("sessions.release", {"session_id": hog}, context=PAGE)


def test_a_call_past_the_time_limit_is_busy_and_the_worker_restarts(
    host: HostProcess, models: dict[str, bytes]
) -> None:
    slow = create(host, models["slow.onnx"])
    started = time.monotonic()
    reply = run(host, slow, {"n": wire("int64", np.array(10**10, np.int64))})
    assert reply["error"]["code"] == "busy", reply
    assert "longer than 1.5 s" in host.logged()
    assert time.monotonic() - started < 10
    quick = run(host, slow, {"n": wire("int64", np.array(5, np.int64))})
    assert quick["ok"], quick
    assert np.frombuffer(
        __import__("base64").b64decode(quick["result"]["outputs"]["y"]["data"]), np.float32
    ).tolist() == [5.0]
    host.result("sessions.release", {"session_id": slow}, context=PAGE)


# -- models that point outside themselves --------------------------------------------------


def sparse_constant_model(location: str) -> onnx.ModelProto:
    """A Constant whose sparse_value keeps its values in an external file: a path the
    import check (metadata.py) does not look at."""
    model = external_data_model(location, sparse=True)
    sparse = model.graph.sparse_initializer.pop()
    model.graph.node.insert(0, helper.make_node("Constant", [], ["w"], sparse_value=sparse))
    return model


def custom_op_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    node = helper.make_node("Inverse", ["x"], ["y"], domain="ai.onnx.contrib")
    model = helper.make_model(
        helper.make_graph([node], "custom", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.contrib", 1)],
    )
    model.ir_version = 8
    return model


@pytest.fixture
def traversal(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A pre-installed folder whose models name files outside it. Listed under names
    that do not end in .onnx, they are indexed as opaque files, as downloads and
    uploads of such models are: the import check never sees them as models."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    folder = tmp_path / "pre"
    folder.mkdir()
    os.symlink(secret, folder / "linked.bin")
    os.link(secret, folder / "hard.bin")
    (folder / "plain.bin").write_bytes(secret.read_bytes())
    fixtures = {
        "absolute.model": external_data_model(str(secret)),
        "dotdot.model": external_data_model("../secret.bin"),
        "symlink.model": external_data_model("linked.bin"),
        "hardlink.model": external_data_model("hard.bin"),
        "sidecar.model": external_data_model("plain.bin"),
        "sparse.model": external_data_model("plain.bin", sparse=True),
        "sparse-constant.model": sparse_constant_model("plain.bin"),
        "custom-op.model": custom_op_model(),
        "absolute.onnx": external_data_model("/etc/hostname"),  # refused when indexed
    }
    for name, model in fixtures.items():
        (folder / name).write_bytes(model.SerializeToString())
    listing = [{"file": name} for name in fixtures]
    (folder / "models.json").write_text(json.dumps({"version": 1, "models": listing}))
    return folder, {name: digest((folder / name).read_bytes()) for name in fixtures}


REFUSED = {
    "absolute.model": "absolute path",
    "dotdot.model": "outside the model's folder",
    "symlink.model": "symbolic link",
    "hardlink.model": "hard link",
    "sidecar.model": "not part of the model's manifest",
    "sparse.model": "sparse tensor",
    "sparse-constant.model": "sparse tensor",
    "custom-op.model": "custom-op library",
}


def test_models_pointing_outside_are_refused_before_ort_sees_them(
    home: Path, traversal: tuple[Path, dict[str, str]]
) -> None:
    folder, digests = traversal
    (home / "no-config.toml").write_text("[sessions]\nbackground_compile = false\n")
    host = HostProcess(home, WEBMODELS_PREINSTALLED=str(folder))
    try:
        for name, says in REFUSED.items():
            reply = host.call("sessions.create", {"sha256": digests[name]}, context=PAGE)
            assert reply["error"]["code"] == "model_unsafe", (name, reply)
            assert says in host.logged(), (name, reply)
        # The import check already keeps such a file out when it is listed as a model.
        listed = host.call("sessions.create", {"sha256": digests["absolute.onnx"]}, context=PAGE)
        assert listed["error"]["code"] == "not_found"
        assert host.result("hello")["protocol_version"] == 1
    finally:
        host.kill()
