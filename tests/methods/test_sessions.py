"""sessions.create / run / release through a real host: the compile cache, partition
ownership, bounds, idle unloading, background compilation and refused inputs."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import requests

from support.contexts import FRAME_IN_A, PAGE_A, PAGE_B, PAGE_C
from support.held import held_in
from support.host import HostProcess
from support.httpserver import ModelServer
from support.models import real_model, tiny_model
from support.runtime_models import identity_model, sample, save, wire, wire_bytes


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def configure(home: Path, **sessions: Any) -> None:
    """Write the [sessions] table into the config file the test host reads."""
    lines = ["[sessions]"] + [f"{k} = {json.dumps(v)}" for k, v in sessions.items()]
    (home / "no-config.toml").write_text("\n".join(lines) + "\n")


def preinstall(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    listing = [{"file": name} for name in files]
    (folder / "models.json").write_text(json.dumps({"version": 1, "models": listing}))
    return folder


def upload(host: HostProcess, data: bytes, context: dict[str, Any]) -> str:
    """Store bytes for a partition through Cross-Origin Storage (as a page would)."""
    digest = hashlib.sha256(data).hexdigest()
    begun = host.result("cos.write.begin", {"sha256": digest, "size": len(data)}, context=context)
    host.result(
        "cos.write.chunk",
        {"upload_id": begun["upload_id"], "offset": 0, "data": base64.b64encode(data).decode()},
        context=context,
    )
    host.result("cos.write.commit", {"upload_id": begun["upload_id"]}, context=context)
    return digest


def magika_feeds() -> tuple[dict[str, Any], np.ndarray[Any, Any]]:
    array = np.random.default_rng(5).integers(0, 257, (1, 2048)).astype(np.int32)
    return {"bytes": wire("int32", array)}, array


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        "magika": real_model("magika"),
        "tiny": tiny_model(folder / "tiny.onnx"),
        "id": save(identity_model("float32"), folder / "id.onnx"),
    }


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, files: dict[str, Path]) -> Iterator[HostProcess]:
    home = tmp_path_factory.mktemp("home")
    configure(home, max_per_partition=2, max_total=3, background_compile=False)
    folder = preinstall(
        home.parent / "preinstalled",
        {"magika.onnx": files["magika"].read_bytes(), "id.onnx": files["id"].read_bytes()},
    )
    proc = HostProcess(home, WEBMODELS_PREINSTALLED=str(folder))
    proc.home = home  # type: ignore[attr-defined]
    yield proc
    proc.kill()


def test_a_second_session_is_a_compile_cache_hit_with_equal_outputs(
    host: HostProcess, files: dict[str, Path]
) -> None:
    digest = sha(files["magika"])
    feeds, array = magika_feeds()
    expected = ort.InferenceSession(str(files["magika"]), providers=["CPUExecutionProvider"]).run(
        None, {"bytes": array}
    )[0]
    first = host.result("sessions.create", {"sha256": digest}, context=PAGE_A)
    assert first["compiled_cache_hit"] is False
    assert first["provider"] == "CPUExecutionProvider"
    assert first["inputs"] == [{"name": "bytes", "type": "int32", "dims": ["unk__214", 2048]}]
    assert first["outputs"] == [
        {"name": "target_label", "type": "float32", "dims": ["unk__215", 214]}
    ]
    second = host.result("sessions.create", {"sha256": digest}, context=PAGE_A)
    assert second["compiled_cache_hit"] is True
    for created in (first, second):
        out = host.result(
            "sessions.run", {"session_id": created["session_id"], "feeds": feeds}, context=PAGE_A
        )["outputs"]
        assert out["target_label"]["dims"] == [1, 214]
        assert wire_bytes(out["target_label"]) == expected.tobytes()
        assert host.result(
            "sessions.release", {"session_id": created["session_id"]}, context=PAGE_A
        ) == {"released": True}
    # The compiled forms are blobs of the store, but never models anyone sees.
    listed = host.result("models.list")["models"]
    assert sorted(m["sha256"] for m in listed) == sorted([digest, sha(files["id"])])
    assert [m["compiled"] for m in listed if m["sha256"] == digest] == [True]
    compiled = held_in(host.home) - {sha(files["id"])}  # type: ignore[attr-defined]
    assert len(compiled) == 2  # the optimized graph and its weights (magika is pre-installed)
    # ONNX Runtime ran in the worker only: the host never loaded it.
    maps = Path(f"/proc/{host.proc.pid}/maps")
    if maps.exists():
        assert "onnxruntime" not in maps.read_text()
    # "disabled" skips the cache: nothing to optimize, nothing saved.
    plain = host.result(
        "sessions.create",
        {"sha256": digest, "graph_optimization_level": "disabled"},
        context=PAGE_A,
    )
    assert plain["compiled_cache_hit"] is False
    host.result("sessions.release", {"session_id": plain["session_id"]}, context=PAGE_A)


def test_sessions_belong_to_the_partition_that_created_them(
    host: HostProcess, files: dict[str, Path]
) -> None:
    created = host.result("sessions.create", {"sha256": sha(files["id"])}, context=PAGE_A)
    feeds = {"x": wire("float32", sample("float32", (1, 1, 4)))}
    own = host.call(
        "sessions.run", {"session_id": created["session_id"], "feeds": feeds}, context=PAGE_A
    )
    assert own["ok"], own
    for context in (PAGE_B, FRAME_IN_A):  # another site, or another frame origin in A
        theirs = host.call(
            "sessions.run", {"session_id": created["session_id"], "feeds": feeds}, context=context
        )
        bogus = host.call("sessions.run", {"session_id": "0" * 32, "feeds": feeds}, context=context)
        assert theirs["error"] == bogus["error"]
        assert theirs["error"]["code"] == "session_not_found"
        assert host.result(
            "sessions.release", {"session_id": created["session_id"]}, context=context
        ) == {"released": False}
    assert host.result(
        "sessions.release", {"session_id": created["session_id"]}, context=PAGE_A
    ) == {"released": True}
    assert host.result(
        "sessions.release", {"session_id": created["session_id"]}, context=PAGE_A
    ) == {"released": False}


def test_create_sees_only_models_visible_to_the_partition(
    host: HostProcess, files: dict[str, Path]
) -> None:
    digest = upload(host, files["tiny"].read_bytes(), PAGE_A)
    theirs = host.call("sessions.create", {"sha256": digest}, context=PAGE_B)
    absent = host.call("sessions.create", {"sha256": "ab" * 32}, context=PAGE_B)
    assert theirs["error"] == absent["error"]
    assert theirs["error"]["code"] == "not_found"
    created = host.result("sessions.create", {"sha256": digest}, context=PAGE_A)
    x = sample("float32", (2, 4))
    out = host.result(
        "sessions.run",
        {"session_id": created["session_id"], "feeds": {"x": wire("float32", x)}},
        context=PAGE_A,
    )
    y = np.frombuffer(wire_bytes(out["outputs"]["y"]), np.float32).reshape(2, 4)  # type: ignore[arg-type]
    assert np.array_equal(y, x + np.arange(4, dtype=np.float32), equal_nan=True)
    host.result("sessions.release", {"session_id": created["session_id"]}, context=PAGE_A)


def test_sessions_are_bounded_per_partition_and_in_total(
    host: HostProcess, files: dict[str, Path]
) -> None:
    params = {"sha256": sha(files["id"])}
    mine = [host.result("sessions.create", params, context=PAGE_A) for _ in range(2)]
    over = host.call("sessions.create", params, context=PAGE_A)
    assert over["error"]["code"] == "busy", over
    other = host.result("sessions.create", params, context=PAGE_B)
    total = host.call("sessions.create", params, context=PAGE_C)
    assert total["error"]["code"] == "busy", total
    for created, context in [(mine[0], PAGE_A), (mine[1], PAGE_A), (other, PAGE_B)]:
        host.result("sessions.release", {"session_id": created["session_id"]}, context=context)
    again = host.result("sessions.create", params, context=PAGE_C)
    host.result("sessions.release", {"session_id": again["session_id"]}, context=PAGE_C)


@pytest.mark.parametrize(
    ("feeds", "fetches", "says"),
    [
        ({"nope": wire("float32", np.zeros((1, 1, 1), np.float32))}, None, "no input 'nope'"),
        ({"x": wire("int32", np.zeros((1, 1, 1), np.int32))}, None, "is int32, but"),
        ({"x": {"type": "float32", "dims": [1, 1, 2], "data": "AAAAAA=="}}, None, "needs 8"),
        ({"x": {"type": "float32", "dims": [1], "data": "***"}}, None, "not valid base64"),
        ({"x": {"type": "complex64", "dims": [1], "data": ""}}, None, "type must be one of"),
        ({}, None, "lack the model's input(s) x"),
        ({"x": wire("float32", np.zeros((1, 1, 1), np.float32))}, ["z"], "no output 'z'"),
    ],
)
def test_bad_feeds_are_refused_with_a_clear_message(
    host: HostProcess, files: dict[str, Path], feeds: Any, fetches: Any, says: str
) -> None:
    created = host.result("sessions.create", {"sha256": sha(files["id"])}, context=PAGE_A)
    try:
        reply = host.call(
            "sessions.run",
            {"session_id": created["session_id"], "feeds": feeds, "fetches": fetches},
            context=PAGE_A,
        )
        assert reply["error"]["code"] == "bad_request", reply
        assert reply["error"]["details"]["field"].startswith(("feeds", "fetches")), reply
        assert says in host.logged()  # a page gets the code and the field; the log says why
        wrong_rank = host.call(
            "sessions.run",
            {
                "session_id": created["session_id"],
                "feeds": {"x": wire("float32", np.zeros((2,), np.float32))},
            },
            context=PAGE_A,
        )
        assert wrong_rank["error"]["code"] == "inference_failed", wrong_rank
    finally:
        host.result("sessions.release", {"session_id": created["session_id"]}, context=PAGE_A)


def test_bad_create_params_and_provider_preferences(
    host: HostProcess, files: dict[str, Path]
) -> None:
    digest = sha(files["id"])
    for params in [
        {"sha256": digest, "execution_providers": "cpu"},
        {"sha256": digest, "graph_optimization_level": "max"},
        {"sha256": "xyz"},
    ]:
        assert (
            host.call("sessions.create", params, context=PAGE_A)["error"]["code"] == "bad_request"
        )
    # Unusable providers are skipped (CUDA without a GPU); none usable falls back to the CPU.
    usable = host.result("hello")["providers"]
    for preference in (["webgpu", "cuda", "cpu"], ["webnn"], [{"name": "wasm"}]):
        created = host.result(
            "sessions.create", {"sha256": digest, "execution_providers": preference}, context=PAGE_A
        )
        cuda = "CUDAExecutionProvider" in usable and "cuda" in preference
        expected = "CUDAExecutionProvider" if cuda else "CPUExecutionProvider"
        assert created["provider"] == expected
        host.result("sessions.release", {"session_id": created["session_id"]}, context=PAGE_A)


def test_outputs_past_one_frame_are_kept_and_read_back(
    host: HostProcess, files: dict[str, Path]
) -> None:
    """An output too big for a reply frame comes as {type, dims, ref, size}; the page
    reads it in chunks (sessions.output) or once through the loopback path
    (sessions.output_open); only its own partition can."""
    created = host.result("sessions.create", {"sha256": sha(files["id"])}, context=PAGE_A)
    try:
        x = np.random.default_rng(1).random((1, 1, 700_000), dtype=np.float32)  # 2.8 MB
        reply = host.call(
            "sessions.run",
            {"session_id": created["session_id"], "feeds": {"x": wire("float32", x)}},
            context=PAGE_A,
        )
        assert reply["ok"], reply
        assert max(host.sizes) <= 1 << 20
        [(name, kept)] = reply["result"]["outputs"].items()
        assert set(kept) == {"type", "dims", "ref", "size"} and kept["size"] == x.nbytes
        assert kept["dims"] == [1, 1, 700_000] and kept["type"] == "float32"
        chunks, offset = [], 0
        while True:
            part = host.result(
                "sessions.output", {"ref": kept["ref"], "offset": offset}, context=PAGE_A
            )
            chunks.append(base64.b64decode(part["data"]))
            offset += part["length"]
            if part["eof"]:
                break
        assert b"".join(chunks) == x.tobytes() and len(chunks) >= 4
        opened = host.result("sessions.output_open", {"ref": kept["ref"]}, context=PAGE_A)
        fetched = requests.get(opened["url"], headers={"Sec-Fetch-Site": "none"}, timeout=10)
        assert fetched.content == x.tobytes()
        for method in ("sessions.output", "sessions.output_open"):
            theirs = host.call(method, {"ref": kept["ref"]}, context=PAGE_B)
            never = host.call(method, {"ref": "0" * 32}, context=PAGE_B)
            assert theirs["error"] == never["error"] and never["error"]["code"] == "not_found"
        small = host.result(
            "sessions.run",
            {"session_id": created["session_id"], "feeds": {"x": wire("float32", x[:, :, :10])}},
            context=PAGE_A,
        )
        assert "data" in small["outputs"][name]  # small outputs stay inline
    finally:
        host.result("sessions.release", {"session_id": created["session_id"]}, context=PAGE_A)


def test_derived_blobs_are_removed_with_their_model(home: Path, files: dict[str, Path]) -> None:
    configure(home, background_compile=False)
    host = HostProcess(home)
    try:
        digest = upload(host, files["magika"].read_bytes(), PAGE_A)
        created = host.result("sessions.create", {"sha256": digest}, context=PAGE_A)
        assert len(held_in(home)) == 3  # the model, its graph, its weights
        host.result("sessions.release", {"session_id": created["session_id"]}, context=PAGE_A)
        freed = host.result("manage.delete", {"sha256": digest})["freed_bytes"]
        assert held_in(home) == set()
        assert freed > files["magika"].stat().st_size
    finally:
        host.kill()


def test_idle_sessions_are_unloaded(home: Path, files: dict[str, Path]) -> None:
    # A second between uses stays "used" even when a loaded machine delays a reply by
    # most of a second (0.4 s did not); the reaper looks every idle_s / 4.
    configure(home, idle_s=1.0, background_compile=False)
    folder = preinstall(home.parent / "pre", {"id.onnx": files["id"].read_bytes()})
    host = HostProcess(home, WEBMODELS_PREINSTALLED=str(folder))
    try:
        created = host.result("sessions.create", {"sha256": sha(files["id"])}, context=PAGE_A)
        feeds = {"x": wire("float32", np.ones((1, 1, 1), np.float32))}
        params = {"session_id": created["session_id"], "feeds": feeds}
        for _ in range(3):  # used: stays
            assert host.call("sessions.run", params, context=PAGE_A)["ok"]
            time.sleep(0.2)
        time.sleep(3.0)
        reply = host.call("sessions.run", params, context=PAGE_A)
        assert reply["error"]["code"] == "session_not_found"
        again = host.result("sessions.create", {"sha256": sha(files["id"])}, context=PAGE_A)
        assert again["compiled_cache_hit"] is True
    finally:
        host.kill()


def test_background_compile_after_a_download_makes_the_first_session_a_hit(
    home: Path, files: dict[str, Path], model_server: ModelServer
) -> None:
    configure(home, background_delay_s=0, background_idle_s=0.2)
    data = files["magika"].read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    url = model_server.add("/magika.onnx", data)
    integrity = "sha256-" + base64.b64encode(bytes.fromhex(digest)).decode()
    host = HostProcess(home)
    try:
        loaded = host.result(
            "models.load",
            {"query": {"url": url, "integrity": integrity}, "compile": True},
            context=PAGE_A,
        )
        assert loaded["model"]["compiled"] is False
        deadline = time.monotonic() + 60
        while f"compiled {digest[:12]}" not in host.logged():  # no page request meanwhile
            assert time.monotonic() < deadline, "not compiled in the background"
            time.sleep(0.1)
        assert host.result("models.list", context=PAGE_A)["models"][0]["compiled"] is True
        created = host.result("sessions.create", {"sha256": digest}, context=PAGE_A)
        assert created["compiled_cache_hit"] is True
    finally:
        host.kill()


def test_a_file_that_is_not_a_model_is_model_invalid(host: HostProcess) -> None:
    digest = upload(host, b"GGUF not an onnx model" * 100, PAGE_A)
    reply = host.call("sessions.create", {"sha256": digest}, context=PAGE_A)
    assert reply["error"]["code"] == "model_invalid", reply
    assert "not an ONNX model" in host.logged()
