"""Hostile model corpus: crafted files, made by this script (nothing binary is kept in
the repository), each sent through the real import (`webmodels import`, a subprocess)
and a COS write to a real host process (`webmodels serve --trusted-stdio`, spoken to
over its pipes).

Every file must be refused with a documented error code (errors.ERROR_CODES) or stored;
the host must stay up, keep its peak RSS bounded, and answer `hello` while it takes
each file in: a second thread sends `hello` every few milliseconds during the write and
its answer times are measured.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from stress_lib.corpus_host import HostClient, cos_write, env_for, ping
from webmodels.errors import ERROR_CODES

IMPORT_TIMEOUT_S = 20  # an import of these few small files takes about 1 s


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _model(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def _identity_graph(name: str, dims: list[int | str]) -> onnx.GraphProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)
    return helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], name, [x], [y])


def huge_dims(_: Path) -> bytes:
    return _model(_identity_graph("huge", [1 << 62, 1 << 62, 1 << 40]))


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def deep_nesting(_: Path) -> bytes:
    """If-nodes in If-nodes, 200 deep: 600 nested messages, past protobuf's limit of 100
    and the reader's cap of 32 graphs (written by hand: protobuf cannot build it)."""
    graph = b""
    for _depth in range(200):
        attr = _field(1, b"then_branch") + b"\xa0\x01\x05" + _field(6, graph)  # type GRAPH
        node = _field(1, b"c") + _field(2, b"y") + _field(4, b"If") + _field(5, attr)
        graph = _field(1, node) + _field(2, b"g")
    return b"\x08\x08" + _field(7, graph) + _field(8, b"\x10\x11")


def _external(location: str) -> bytes:
    graph = _identity_graph("ext", [4])
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4], [0.0] * 4)
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value=location)
    weight.external_data.add(key="length", value="16")
    graph.initializer.append(weight)
    return _model(graph)


def external_dotdot(_: Path) -> bytes:
    return _external("../../secret.bin")


def external_absolute(_: Path) -> bytes:
    return _external("/etc/passwd")


def external_symlink(folder: Path) -> bytes:
    link = folder / "weights.bin"
    if not link.is_symlink():
        link.symlink_to("/etc/passwd")
    return _external("weights.bin")


def external_hardlink(folder: Path) -> bytes:
    """`weights.bin`, a second name of a file outside the model's folder."""
    secret = folder.parent / "hardlink-secret.bin"
    secret.write_bytes(b"a file outside the model's folder\n")
    if not (folder / "weights.bin").exists():
        os.link(secret, folder / "weights.bin")
    return _external("weights.bin")


def external_fifo(folder: Path) -> bytes:
    """`weights.bin` is a named pipe: reading it waits for a writer that never comes."""
    if not (folder / "weights.bin").exists():
        os.mkfifo(folder / "weights.bin")
    return _external("weights.bin")


def cyclic(_: Path) -> bytes:
    graph = _identity_graph("cycle", [4])
    graph.node.append(helper.make_node("Add", ["y", "z"], ["w"]))
    graph.node.append(helper.make_node("Identity", ["w"], ["z"]))
    return _model(graph)


def custom_domain(_: Path) -> bytes:
    graph = _identity_graph("custom", [4])
    graph.node[0].domain = "com.example.evil"
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example.evil", 1)],
    )
    model.ir_version = 8
    return bytes(model.SerializeToString())


def huge_attribute(_: Path) -> bytes:
    """A Constant whose tensor claims 2^40 floats and holds none."""
    graph = _identity_graph("constant", [4])
    value = TensorProto(name="v", data_type=TensorProto.FLOAT, dims=[1 << 40])
    graph.node.append(helper.make_node("Constant", [], ["unused"], value=value))
    return _model(graph)


def truncated(_: Path) -> bytes:
    data = _model(_identity_graph("cut", ["N", 4]))
    return data[: len(data) // 2]


def length_bomb(_: Path) -> bytes:
    """ir_version, then a graph field whose length claims 4 GiB: 8 bytes follow."""
    return b"\x08\x08" + b"\x3a" + _varint(4 << 30) + b"\x0a\x00" * 4


def repeated_nodes(_: Path) -> bytes:
    """A graph of 600,000 empty node fields (2 bytes each): past the node cap."""
    body = b"\x0a\x00" * 600_000
    return b"\x08\x08" + b"\x3a" + _varint(len(body)) + body + _field(8, b"\x10\x11")


def safetensors_huge(_: Path) -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1 << 40], "data_offsets": [0, 1 << 42]}})
    return struct.pack("<Q", len(header)) + header.encode() + b"\0" * 64


def safetensors_overlap(_: Path) -> bytes:
    header = json.dumps(
        {
            "a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
            "b": {"dtype": "F32", "shape": [8], "data_offsets": [16, 48]},
        }
    )
    return struct.pack("<Q", len(header)) + header.encode() + b"\1" * 48


def safetensors_header_claim(_: Path) -> bytes:
    """An 8-byte header length claiming 2**60 bytes."""
    return struct.pack("<Q", 1 << 60) + b'{"w": 1}' + b"\0" * 64


def gguf_counts(_: Path) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, 1 << 62, 1 << 62) + b"\0" * 64


CORPUS: dict[str, Callable[[Path], bytes]] = {
    "onnx-huge-dims.onnx": huge_dims,
    "onnx-deep-nesting.onnx": deep_nesting,
    "onnx-external-dotdot.onnx": external_dotdot,
    "onnx-external-absolute.onnx": external_absolute,
    "onnx-external-symlink.onnx": external_symlink,
    "onnx-external-hardlink.onnx": external_hardlink,
    "onnx-external-fifo.onnx": external_fifo,
    "onnx-cyclic.onnx": cyclic,
    "onnx-custom-domain.onnx": custom_domain,
    "onnx-huge-attribute.onnx": huge_attribute,
    "onnx-truncated.onnx": truncated,
    "onnx-length-bomb.onnx": length_bomb,
    "onnx-repeated-nodes.onnx": repeated_nodes,
    "safetensors-huge-tensor.safetensors": safetensors_huge,
    "safetensors-overlap.safetensors": safetensors_overlap,
    "safetensors-header-claim.safetensors": safetensors_header_claim,
    "gguf-absurd-counts.gguf": gguf_counts,
}


def build_corpus(folder: Path) -> list[Path]:
    """Write every hostile file into `folder` (each in its own sub-folder)."""
    paths = []
    for name, make in CORPUS.items():
        sub = folder / name.split(".")[0]
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / name
        path.write_bytes(make(sub))
        paths.append(path)
    return paths


@dataclass
class Outcome:
    name: str
    imported: str = ""  # "stored" or the error code
    written: str = ""
    hello_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def import_codes(home: Path, paths: list[Path]) -> dict[Path, str]:
    """`webmodels --json import`: "stored", or the error code, per file. Single files go
    in one run (one process start); an ONNX file naming external data is imported as a
    model set, one run each."""
    from webmodels.cli.manifest_import import is_model_set

    sets = [p for p in paths if is_model_set(p)]
    codes = _import_run(home, [p for p in paths if p not in sets])
    for path in sets:
        codes.update(_import_run(home, [path]))
    return codes


def _import_run(home: Path, paths: list[Path]) -> dict[Path, str]:
    try:
        run = subprocess.run(
            [sys.executable, "-m", "webmodels", "--json", "import", *map(str, paths)],
            env=env_for(home),
            capture_output=True,
            text=True,
            timeout=IMPORT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return dict.fromkeys(paths, f"hang (no answer in {IMPORT_TIMEOUT_S} s)")
    try:
        value = json.loads(run.stdout if run.stdout.strip() else run.stderr)
    except ValueError:
        value = None
    if isinstance(value, list):  # one outcome per file
        return {p: _outcome_code(o) for p, o in zip(paths, value, strict=True)}
    if len(paths) == 1 and isinstance(value, dict):  # one file's error, or a model set
        return {paths[0]: _outcome_code(value)}
    return dict.fromkeys(paths, f"unclear (exit {run.returncode}): {run.stderr[-300:]!r}")


def _outcome_code(value: object) -> str:
    if not isinstance(value, dict):
        return f"unclear: {value!r:.200}"
    error = value.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return str(error["code"])
    return "stored" if error is None else f"unclear: {value!r:.200}"


def run_corpus(folder: Path) -> tuple[list[Outcome], int]:
    """Every corpus file through `webmodels import` and a host's COS write; the outcomes
    and the host's peak RSS in KiB."""
    home = folder / "home"
    outcomes = []
    paths = build_corpus(folder / "corpus")
    imported = import_codes(home, paths)
    host = HostClient(folder / "host-home")
    try:
        host.call("hello")
        for path in paths:
            outcome = Outcome(path.name, imported=imported[path])
            stop = threading.Event()
            pinger = threading.Thread(target=ping, args=(host, stop, outcome.hello_ms))
            pinger.start()
            try:
                outcome.written = cos_write(host, path.read_bytes())
            except EOFError:
                outcome.written = "host gone"
            stop.set()
            pinger.join()
            _judge(outcome, host)
            outcomes.append(outcome)
        return outcomes, host.peak_rss_kib()
    finally:
        host.close()


def _judge(outcome: Outcome, host: HostClient) -> None:
    for how, code in (("import", outcome.imported), ("COS write", outcome.written)):
        if code != "stored" and code not in ERROR_CODES:
            outcome.problems.append(f"{how}: {code}")
    if host.proc.poll() is not None:
        outcome.problems.append(f"the host exited ({host.proc.returncode})")
    if not outcome.hello_ms or outcome.hello_ms[-1] == float("inf"):
        outcome.problems.append("hello got no answer")


def print_corpus(size: str) -> int:
    """`scripts/stress --only corpus`: the table of outcomes; the count of bad ones."""
    import tempfile

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wm-corpus-") as tmp:
        outcomes, rss_kib = run_corpus(Path(tmp))
    for o in outcomes:
        times = sorted(o.hello_ms)
        print(
            f"{o.name:40} import {o.imported:14} COS write {o.written:14} hello x{len(times)}: "
            f"median {times[len(times) // 2]:.1f} ms, max {times[-1]:.1f} ms  "
            + "; ".join(o.problems)
        )
    every = sorted(t for o in outcomes for t in o.hello_ms)
    print(
        f"corpus: {len(outcomes)} files, {sum(bool(o.problems) for o in outcomes)} bad; host peak "
        f"RSS {rss_kib / 1024:.0f} MiB; hello x{len(every)}: max {every[-1]:.1f} ms, "
        f"{sum(t > 50 for t in every)} over 50 ms; {time.monotonic() - started:.1f} s ({size})"
    )
    return sum(bool(o.problems) for o in outcomes)
