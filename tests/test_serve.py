"""A real host subprocess over stdio: malformed input never ends the loop, EOF ends
it cleanly, stdout carries frames only, and no reply frame exceeds 1 MiB."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import time
from pathlib import Path

import pytest

from support.contexts import page_context
from support.host import HostProcess, frame, run_cli
from support.models import real_model, tiny_model

PAGE_A = page_context("https://a.example", user_activation=False)
PAGE_B = page_context("https://b.example", user_activation=False)


def assert_still_serving(host: HostProcess) -> None:
    assert host.result("hello")["protocol_version"] == 1


def test_hello(host: HostProcess) -> None:
    result = host.result("hello")
    assert result["protocol_version"] == 1
    assert "models.read" in result["capabilities"]
    while result["providers_pending"]:  # hello never waits for the provider probe
        time.sleep(0.05)
        result = host.result("hello")
    assert "CPUExecutionProvider" in result["providers"]
    assert result["trusted"] is True


def test_frame_fed_one_byte_at_a_time(host: HostProcess) -> None:
    for byte in frame({"id": 1, "method": "hello", "params": {}}):
        host.send_raw(bytes([byte]))
    reply = host.recv()
    assert reply["id"] == 1 and reply["ok"] is True


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xff\xff\xff\xff", "too_large"),
        (struct.pack("=I", 3) + b"\xff\xfe\xfd", "bad_frame"),  # invalid UTF-8
        (frame([1, 2, 3]), "bad_request"),  # JSON that is not an object
        (frame({"id": 5, "method": "no.such"}), "unknown_method"),
        (struct.pack("=I", 0), "bad_frame"),
        (struct.pack("=I", 9) + b"{not json", "bad_frame"),
    ],
)
def test_bad_input_gets_its_error_and_the_loop_goes_on(
    host: HostProcess, raw: bytes, code: str
) -> None:
    host.send_raw(raw)
    reply = host.recv()
    assert reply["ok"] is False and reply["error"]["code"] == code
    assert_still_serving(host)
    assert host.close() == 0


def test_eof_is_a_clean_exit(host: HostProcess) -> None:
    assert_still_serving(host)
    assert host.close() == 0


def test_truncated_length_prefix_then_eof(host: HostProcess) -> None:
    host.send_raw(b"\x07\x00")
    assert host.close() == 0
    reply = host.recv()
    assert reply["error"]["code"] == "bad_frame"


def test_logs_go_to_a_file_not_stdout(host: HostProcess, home: Path) -> None:
    host.send_raw(b"\xff\xff\xff\xff")
    host.recv()
    assert host.close() == 0
    log = (home / "logs" / "host.log").read_text()
    assert "exceeds the" in log and "stdin closed" in log


def test_browser_started_host_requires_context(home: Path) -> None:
    host = HostProcess(home, "chrome-extension://nkalnjoncikobhonhokfhfdgffafbfch/", trusted=False)
    try:
        reply = host.call("manage.stats")
        assert reply["error"]["code"] == "bad_request" and "context" in reply["error"]["message"]
        assert host.call("manage.stats", context=PAGE_A)["error"]["code"] == "access_denied"
        assert host.call("hello", context=PAGE_A)["ok"] is True
    finally:
        host.kill()


def test_browser_caller_cannot_ask_for_trusted_stdio(home: Path) -> None:
    result = run_cli(home, "serve", "--trusted-stdio", "chrome-extension://x/", check=False)
    assert result.returncode == 1 and "access_denied" in result.stderr


def test_read_5_mib_model_in_chunks(host: HostProcess, home: Path, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "big.onnx", weight_bytes=5 * 1024 * 1024)
    expected = model.read_bytes()
    run_cli(home, "import", str(model))
    digest = hashlib.sha256(expected).hexdigest()
    loaded = host.result("models.load", {"query": {"sha256": digest}})["model"]
    assert loaded["size"] == len(expected) and loaded["format"] == "onnx"
    chunks, offset, eof = [], 0, False
    while not eof:
        # Ask for far more than fits: the host clamps every chunk under the frame limit.
        result = host.result(
            "models.read", {"sha256": digest, "offset": offset, "length": 64 * 1024 * 1024}
        )
        data = base64.b64decode(result["data"])
        assert result["offset"] == offset and result["length"] == len(data) > 0
        chunks.append(data)
        offset += len(data)
        eof = result["eof"]
    assert b"".join(chunks) == expected
    assert len(chunks) >= 7
    assert host.close() == 0  # checks every frame read was <= 1 MiB
    assert max(host.sizes) <= 1024 * 1024


def test_real_model_through_the_host(host: HostProcess, home: Path) -> None:
    model = real_model("magika")
    run_cli(home, "import", str(model), "--name", "google/magika", "--model-version", "1.0.3")
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    info = host.result("models.load", {"query": {"sha256": digest}})["model"]
    assert info["name"] == "google/magika" and info["source"] == "imported"
    assert info["inputs"][0]["name"] == "bytes" and info["inputs"][0]["type"] == "int32"
    assert info["outputs"][0]["name"] == "target_label"
    assert {"ai.onnx", "ai.onnx.ml"} <= set(info["opsets"])
    first = host.result("models.read", {"sha256": digest, "offset": 0, "length": 16})
    assert base64.b64decode(first["data"]) == model.read_bytes()[:16]


def test_pages_see_only_what_they_may(host: HostProcess, home: Path, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.onnx", seed=3)
    run_cli(home, "import", str(model))
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    absent = "0" * 64

    def availability(sha: str, context: dict[str, object]) -> object:
        return host.call("models.availability", {"query": {"sha256": sha}}, context=context)

    # A model the site never obtained answers exactly like an absent one.
    held, missing = availability(digest, PAGE_A), availability(absent, PAGE_A)
    assert held["result"] == missing["result"] == {"availability": "unavailable"}
    load = host.call("models.load", {"query": {"sha256": digest}}, context=PAGE_A)
    assert load["error"]["code"] == "not_found"
    read = host.call("models.read", {"sha256": digest}, context=PAGE_A)
    assert read["error"]["code"] == "not_found"
    assert host.call("models.list", context=PAGE_A)["result"] == {"models": [], "next_cursor": None}
    # Trusted callers (CLI, popup) see it; management is theirs alone.
    assert host.result("models.availability", {"query": {"sha256": digest}}) == {
        "availability": "available"
    }
    denied = host.call("manage.list", context=PAGE_B)
    assert denied["error"]["code"] == "access_denied"


def test_preinstalled_models_are_common(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "system-models"
    model = tiny_model(folder / "tiny" / "model.onnx", seed=9)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    entry = {"file": "tiny/model.onnx", "sha256": digest, "name": "acme/tiny", "version": "1.4.0"}
    (folder / "models.json").write_text(json.dumps({"version": 1, "models": [entry]}))
    host = HostProcess(home, WEBMODELS_PREINSTALLED=str(folder))
    try:
        info = host.result("models.load", {"query": {"sha256": digest}}, context=PAGE_A)["model"]
        assert info["source"] == "preinstalled" and info["version"] == "1.4.0"
        listed = host.result("models.list", context=PAGE_B)["models"]
        assert [m["sha256"] for m in listed] == [digest]
        stats = host.result("manage.stats")
        assert stats["physical_bytes"] == 0 and stats["preinstalled_bytes"] == len(
            model.read_bytes()
        )
        sites = host.result("manage.list")["models"][0]["sites"]
        assert sites == [PAGE_A["partition"]]
    finally:
        host.kill()


def test_manage_pin_delete_stats(host: HostProcess, home: Path, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.onnx", seed=4)
    run_cli(home, "import", str(model))
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert host.result("manage.pin", {"sha256": digest})["model"]["pinned"] is True
    refused = host.call("manage.delete", {"sha256": digest})
    assert refused["error"]["code"] == "model_pinned"
    host.result("manage.pin", {"sha256": digest, "pinned": False})
    freed = host.result("manage.delete", {"sha256": digest})["freed_bytes"]
    assert freed == len(model.read_bytes())
    assert host.result("manage.stats")["stored_blobs"] == 0
    assert host.call("models.load", {"query": {"sha256": digest}})["error"]["code"] == "not_found"
