"""What a page uploads, or has the host download, is read only under limits (hole 3): a
model built to exhaust a parser neither grows a real host's memory nor holds up other
sites' requests, and a file past the reader's caps is still stored, as a plain file
without metadata."""

from __future__ import annotations

import base64
import hashlib
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from support.contexts import PAGE_A, PAGE_B
from support.flood import identity_flood
from support.host import HostProcess
from support.httpserver import ModelServer
from support.models import real_model, tiny_model
from webmodels.store.metadata import read_onnx_metadata

CHUNK = 4 << 20
MIB = 1 << 20


@pytest.fixture(scope="module")
def floods(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Path]]:
    folder = tmp_path_factory.mktemp("floods")
    yield {
        n: identity_flood(folder / f"flood-{n}.onnx", n) for n in (125_000, 1_000_000, 2_000_000)
    }


def begin_and_send(host: HostProcess, data: bytes, context: dict[str, object]) -> str:
    digest = hashlib.sha256(data).hexdigest()
    begun = host.result("cos.write.begin", {"sha256": digest, "size": len(data)}, context=context)
    for offset in range(0, len(data), CHUNK):
        piece = base64.b64encode(data[offset : offset + CHUNK]).decode()
        host.result(
            "cos.write.chunk",
            {"upload_id": begun["upload_id"], "offset": offset, "data": piece},
            context=context,
        )
    return str(begun["upload_id"])


def upload(host: HostProcess, data: bytes, context: dict[str, object]) -> dict[str, object]:
    upload_id = begin_and_send(host, data, context)
    return host.result("cos.write.commit", {"upload_id": upload_id}, context=context)  # type: ignore[no-any-return]


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.002):
            self.peak = max(self.peak, memory(self.pid)["VmRSS"])


def hello_waits(host: HostProcess, until: Callable[[], bool]) -> list[float]:
    """Seconds each ``hello`` took, sent one after another until ``until()``."""
    waits: list[float] = []
    while not until():
        sent = time.perf_counter()
        assert host.call("hello", context=PAGE_B)["ok"]
        waits.append(time.perf_counter() - sent)
    return waits


def p99(waits: list[float]) -> float:
    return statistics.quantiles(waits, n=100)[98] if len(waits) > 1 else max(waits)


def summary(waits: list[float]) -> str:
    return (
        f"{len(waits)} hello: median {statistics.median(waits) * 1000:.1f} ms, "
        f"p99 {p99(waits) * 1000:.1f} ms, max {max(waits) * 1000:.1f} ms"
    )


def test_committing_a_2m_node_model_keeps_the_host_small_and_answering(
    host: HostProcess, floods: dict[int, Path]
) -> None:
    data = floods[2_000_000].read_bytes()
    host.result("hello", context=PAGE_B)  # the first one waits for the provider probe
    quiet_until = time.perf_counter() + 1.0
    quiet = hello_waits(host, lambda: time.perf_counter() > quiet_until)
    upload_id = begin_and_send(host, data, PAGE_A)
    before = memory(host.proc.pid)
    sampler = RssSampler(host.proc.pid)
    sampler.start()
    started = time.perf_counter()
    host.send(
        {
            "id": 1,
            "method": "cos.write.commit",
            "params": {"upload_id": upload_id},
            "context": PAGE_A,
        }
    )
    waits = hello_waits(host, lambda: any(m.get("id") == 1 for m in host.backlog))
    commit_s = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    reply = host.recv()
    after = memory(host.proc.pid)
    peak = max(sampler.peak, after["VmHWM"] if after["VmHWM"] > before["VmHWM"] else 0)
    grown = peak - before["VmRSS"]
    print(
        f"\n2M-node commit ({len(data) / MIB:.1f} MiB): {commit_s:.2f} s; host RSS "
        f"{before['VmRSS'] / MIB:.0f} MiB before, peak {peak / MIB:.0f} MiB "
        f"({grown / MIB:+.1f} MiB); meanwhile {summary(waits)}; "
        f"idle host before: {summary(quiet)}"
    )
    assert reply["ok"], reply
    assert grown < 100 * MIB
    # Answered within 50 ms: 99 in 100 hellos. On a loaded 2-core machine an idle host
    # too has the odd 100-200 ms stall (printed above), so the slowest one is held to
    # 500 ms: a parse that holds the GIL (the old onnx.load) keeps it for seconds.
    assert p99(waits) < 0.050
    assert max(waits) < 0.500


def test_a_model_past_the_caps_is_stored_as_a_plain_file(
    host: HostProcess, floods: dict[int, Path]
) -> None:
    data = floods[1_000_000].read_bytes()
    digest = hashlib.sha256(data).hexdigest()

    model = upload(host, data, PAGE_A)["model"]

    assert isinstance(model, dict)
    assert (model["format"], model["inputs"], model["outputs"]) == ("binary", [], [])
    assert (model["opsets"], model["ir_version"], model["producer"]) == ({}, None, None)
    found = host.result("cos.lookup", {"sha256": digest}, context=PAGE_A)
    assert found == {"found": True, "size": len(data)}
    back = bytearray()
    while len(back) < len(data):
        read = host.result("models.read", {"sha256": digest, "offset": len(back)}, context=PAGE_A)
        back += base64.b64decode(read["data"])
    assert bytes(back) == data


@pytest.mark.parametrize("name", ["tiny", "magika", "silero-vad"])
def test_models_within_the_caps_keep_their_metadata(
    host: HostProcess, tmp_path: Path, name: str
) -> None:
    path = tiny_model(tmp_path / "tiny.onnx") if name == "tiny" else real_model(name)
    expected = read_onnx_metadata(path).to_json()

    model = upload(host, path.read_bytes(), PAGE_A)["model"]

    assert isinstance(model, dict)
    assert model["format"] == "onnx"
    for key in ("inputs", "outputs", "opsets", "ir_version", "producer"):
        assert model[key] == expected[key], key


def test_an_upload_with_external_data_is_stored_plain_and_still_refused_by_the_runtime(
    host: HostProcess, tmp_path: Path
) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    weights = numpy_helper.from_array(np.ones(4, dtype=np.float32), name="w")
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    entry = weights.external_data.add()
    entry.key, entry.value = "location", "../../../etc/passwd"
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [weights]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    data = model.SerializeToString()

    stored = upload(host, data, PAGE_A)["model"]
    reply = host.call(
        "sessions.create", {"sha256": hashlib.sha256(data).hexdigest()}, context=PAGE_A
    )

    assert isinstance(stored, dict) and stored["format"] == "binary"
    assert reply["error"]["code"] == "model_unsafe", reply


def test_a_download_past_the_caps_is_stored_as_a_plain_file(
    host: HostProcess, floods: dict[int, Path], model_server: ModelServer
) -> None:
    data = floods[1_000_000].read_bytes()
    url = model_server.add("/flood.onnx", data)
    integrity = "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    query = {"query": {"url": url, "integrity": integrity}}

    host.send({"id": 1, "method": "models.load", "params": query, "context": PAGE_A})
    while (reply := host.recv(timeout=120)).get("id") != 1 or "event" in reply:
        pass

    assert reply["ok"], reply
    model = reply["result"]["model"]
    assert (model["format"], model["inputs"], model["ir_version"]) == ("binary", [], None)


def test_eight_commits_at_once_leave_the_request_threads_free(
    host: HostProcess, floods: dict[int, Path]
) -> None:
    # Two sites, four uploads each (the per-site limit): as many as the request pool has
    # threads. Each model differs by a doc_string (ModelProto field 6) appended to it.
    # 125,000 nodes (under the node cap, so each is described in full): eight commits
    # still hold the GIL for seconds together, which a hello waited out on the old host.
    flood = floods[125_000].read_bytes()
    sites = [
        {
            **PAGE_A,
            "partition": {"top_site": f"https://s{n}.example", "origin": f"https://s{n}.example"},
        }
        for n in range(2)
    ]
    host.result("hello", context=PAGE_B)
    uploads = [
        (begin_and_send(host, flood + b"\x32\x01" + bytes([65 + n]), sites[n % 2]), sites[n % 2])
        for n in range(8)
    ]
    started = time.perf_counter()
    for n, (upload_id, context) in enumerate(uploads, start=1):
        host.send(
            {
                "id": n,
                "method": "cos.write.commit",
                "params": {"upload_id": upload_id},
                "context": context,
            }
        )
    waits = hello_waits(host, lambda: sum(m.get("id") in range(1, 9) for m in host.backlog) == 8)
    elapsed = time.perf_counter() - started
    replies = [host.recv() for _ in range(8)]
    print(f"\n8 commits of 125k-node models at once: {elapsed:.2f} s; meanwhile {summary(waits)}")
    assert all(r["ok"] and r["result"]["model"]["format"] == "onnx" for r in replies), replies
    # Before commits left the request pool, a hello waited for one to finish (13-16 s).
    assert max(waits) < 1.0
