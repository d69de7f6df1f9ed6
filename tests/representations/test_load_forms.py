"""`models.load` and `sessions.create` with a `representation` through a real host:
a page gets a form of a model it may see, says what it is, reads and runs it; it
never gets one of a model it may not see. A session of the ORT-format form runs in the
host like its source; an opset range takes a model that fits as it is; a q4 form no
converter makes is ``representation_unavailable``."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from methods.test_sessions import configure, upload
from representations.test_derive import dense_model, no_matmul_model
from support.contexts import PAGE_A, PAGE_B
from support.host import HostProcess
from support.runtime_models import wire
from webmodels.errors import ERROR_CODES


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    home = tmp_path_factory.mktemp("home")
    configure(home, background_compile=False)
    proc = HostProcess(home)
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return dense_model(tmp_path_factory.mktemp("m") / "dense.onnx").read_bytes()


@pytest.fixture(scope="module")
def model(host: HostProcess, source: bytes) -> str:
    """A dense model that page A stored (page B has not, until it stores it itself)."""
    return upload(host, source, PAGE_A)


def load(host: HostProcess, digest: str, representation: Any, context: Any) -> Any:
    params = {"query": {"sha256": digest}, "representation": representation}
    return host.call("models.load", params, context=context)


def read_all(host: HostProcess, digest: str, context: Any) -> bytes:
    reply = host.result("models.read", {"sha256": digest, "length": 1 << 20}, context=context)
    assert reply["eof"]
    return base64.b64decode(reply["data"])


def test_a_page_loads_an_fp16_form_of_its_model_and_reads_it(host: HostProcess, model: str) -> None:
    reply = load(host, model, {"dtype": "fp16"}, PAGE_A)
    assert reply["ok"], reply
    got = reply["result"]["model"]
    assert got["representation"] == {"dtype": "fp16", "format": "onnx", "opset": None}
    assert got["derived_from"] == model and got["sha256"] != model
    data = read_all(host, got["sha256"], PAGE_A)
    assert hashlib.sha256(data).hexdigest() == got["sha256"]
    # Another site may neither derive from A's model nor read A's form.
    other = load(host, model, {"dtype": "fp16"}, PAGE_B)
    assert not other["ok"] and other["error"]["code"] == "not_found"
    unread = host.call("models.read", {"sha256": got["sha256"]}, context=PAGE_B)
    assert not unread["ok"] and unread["error"]["code"] == "not_found"


def test_a_second_site_gets_the_same_answer_from_a_derivation_of_its_own(
    host: HostProcess, model: str, source: bytes
) -> None:
    """Byte-identical to A's answer, and derived again for B (the host log counts the
    derivations): A's form neither shows nor speeds up B's."""
    first = load(host, model, {"dtype": "int8"}, PAGE_A)
    derivations = host.logged().count("derived {")
    assert upload(host, source, PAGE_B) == model  # B holds the same bytes itself
    second = load(host, model, {"dtype": "int8"}, PAGE_B)
    assert second == {**first, "id": second["id"]}
    assert host.logged().count("derived {") == derivations + 1


def test_for_webgpu_follows_the_features_the_page_reports(host: HostProcess, model: str) -> None:
    plain = load(host, model, {"for": "webgpu", "device": {"webgpu": {"features": []}}}, PAGE_A)
    assert plain["ok"], plain
    assert plain["result"]["model"]["sha256"] == model
    assert plain["result"]["model"]["derived_from"] is None
    assert plain["result"]["model"]["representation"]["dtype"] == "fp32"
    f16 = load(
        host, model, {"for": "webgpu", "device": {"webgpu": {"features": ["shader-f16"]}}}, PAGE_A
    )
    assert f16["ok"], f16
    assert f16["result"]["model"]["representation"]["dtype"] == "fp16"
    assert f16["result"]["model"]["derived_from"] == model


def test_a_session_of_the_int8_form_runs_close_to_the_source(host: HostProcess, model: str) -> None:
    x = np.random.default_rng(3).standard_normal((2, 8)).astype(np.float32)
    outputs = {}
    for representation in (None, {"for": "wasm", "dtype": "int8"}):
        params: dict[str, Any] = {"sha256": model}
        if representation is not None:
            params["representation"] = representation
        created = host.result("sessions.create", params, context=PAGE_A)
        ran = host.result(
            "sessions.run",
            {"session_id": created["session_id"], "feeds": {"x": wire("float32", x)}},
            context=PAGE_A,
        )
        y = ran["outputs"]["y"]
        outputs[created.get("representation", {}).get("dtype")] = np.frombuffer(
            base64.b64decode(y["data"]), dtype="<f4"
        )
        if representation is not None:
            assert created["derived_from"] == model
    assert outputs["int8"].shape == outputs[None].shape
    assert np.max(np.abs(outputs["int8"] - outputs[None])) < 0.1 * max(
        1.0, float(np.max(np.abs(outputs[None])))
    )


@pytest.mark.parametrize(
    "representation",
    [
        {"dtype": "q2"},
        {"format": "gguf"},
        {"opset": 99},
        {"for": "cuda"},
        "fp16",
        {"device": 1},
    ],
)
def test_a_bad_representation_is_a_bad_request(
    host: HostProcess, model: str, representation: Any
) -> None:
    reply = load(host, model, representation, PAGE_A)
    assert not reply["ok"] and reply["error"]["code"] == "bad_request", reply


def test_a_derivation_reports_its_stages_as_events(host: HostProcess, model: str) -> None:
    request_id = 4242
    params = {"query": {"sha256": model}, "representation": {"dtype": "fp32", "opset": 21}}
    host.send({"id": request_id, "method": "models.load", "params": params, "context": PAGE_A})
    stages = []
    while True:
        frame = host.recv()
        if frame.get("id") != request_id:
            continue
        if frame.get("event") == "representation.progress":
            stages.append(frame["stage"])
            continue
        assert frame["ok"], frame
        break
    assert stages == ["deriving", "checking", "storing"]
    assert frame["result"]["model"]["representation"]["opset"] == 21


def run_session(host: HostProcess, params: dict[str, Any], x: np.ndarray[Any, Any]) -> Any:
    created = host.result("sessions.create", params, context=PAGE_A)
    ran = host.result(
        "sessions.run",
        {"session_id": created["session_id"], "feeds": {"x": wire("float32", x)}},
        context=PAGE_A,
    )
    host.result("sessions.release", {"session_id": created["session_id"]}, context=PAGE_A)
    y = np.frombuffer(base64.b64decode(ran["outputs"]["y"]["data"]), dtype="<f4")
    return created, y


def test_a_host_session_of_the_ort_form_runs_like_its_source(host: HostProcess, model: str) -> None:
    x = np.random.default_rng(5).standard_normal((3, 8)).astype(np.float32)
    _, want = run_session(host, {"sha256": model}, x)
    ort_form = {"format": "ort"}
    created, got = run_session(host, {"sha256": model, "representation": ort_form}, x)
    assert created["representation"] == {"dtype": "fp32", "format": "ort", "opset": None}
    assert created["derived_from"] == model
    assert [i["name"] for i in created["inputs"]] == ["x"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # The session ran the ORT flatbuffer itself, the form a page loading it gets.
    loaded = load(host, model, ort_form, PAGE_A)["result"]["model"]
    assert read_all(host, loaded["sha256"], PAGE_A)[4:8] == b"ORTM"


def test_an_opset_range_takes_a_fitting_model_as_it_is_and_converts_one_that_does_not(
    host: HostProcess, model: str
) -> None:
    fits = load(host, model, {"opset": "15-19"}, PAGE_A)["result"]["model"]
    assert fits["sha256"] == model and fits["derived_from"] is None
    assert fits["representation"] == {"dtype": "fp32", "format": "onnx", "opset": None}

    newer = load(host, model, {"opset": {"min": 18, "max": 21}}, PAGE_A)["result"]["model"]
    assert newer["derived_from"] == model
    assert newer["representation"]["opset"] == 21  # the highest in the range
    form = onnx.load_from_string(read_all(host, newer["sha256"], PAGE_A))
    assert [o.version for o in form.opset_import if o.domain in ("", "ai.onnx")] == [21]

    for bad in ("21-17", "17", {"min": 900}, {"max": 3}, {"min": 18, "max": "21"}):
        reply = load(host, model, {"opset": bad}, PAGE_A)
        assert reply["error"]["code"] == "bad_request", (bad, reply)
        assert reply["error"]["details"]["field"].startswith("representation.opset")


def test_a_page_asking_q4_of_a_model_without_matmul_is_told_it_is_unavailable(
    host: HostProcess, tmp_path: Path
) -> None:
    plain = upload(host, no_matmul_model(tmp_path / "plain.onnx").read_bytes(), PAGE_A)
    reply = load(host, plain, {"dtype": "q4"}, PAGE_A)
    assert reply["error"] == {
        "code": "representation_unavailable",
        "message": ERROR_CODES["representation_unavailable"],
        "details": {},
    }
