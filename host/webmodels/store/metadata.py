"""What a stored file is: its format and, for ONNX, the metadata of the model.

Parsing happens on the writer's temp file, before anything is published, so a file
that is not what it claims to be never enters the store. External-data references
are refused here for a single file: onnx and ONNX Runtime have had repeated
path-traversal CVEs through ``location`` (e.g. CVE-2022-25882, CVE-2024-27318), and a
single file cannot carry the files they name. Such a graph is accepted only as the
graph of a model manifest that lists every file it names (manifests/graph.py); its
metadata then records the locations (`ModelMetadata.external_data`).

Two readers: `describe_file`, for bytes a page or a server chose (uploads, downloads),
reads them with the capped streaming reader of `onnx_wire` and never loads them with
``onnx`` in the host; `read_onnx_metadata`, for files the user chose (``webmodels
import``, pre-installed folders), runs the full ``onnx`` load and checker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webmodels.errors import HostError

log = logging.getLogger(__name__)

# onnx.TensorProto.DataType -> the ORT Web tensor type names used on the wire.
ELEMENT_TYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    14: "complex64",
    15: "complex128",
    16: "bfloat16",
    17: "float8e4m3fn",
    18: "float8e4m3fnuz",
    19: "float8e5m2",
    20: "float8e5m2fnuz",
    21: "uint4",
    22: "int4",
}
_SNIFF_BYTES = 64


@dataclass(frozen=True, slots=True)
class ValueInfo:
    name: str
    type: str
    dims: tuple[int | str | None, ...] | None  # None: rank unknown

    def to_wire(self) -> dict[str, Any]:
        dims = None if self.dims is None else list(self.dims)
        return {"name": self.name, "type": self.type, "dims": dims}


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    format: str  # "onnx" or, for opaque blobs, what the bytes show ("gguf", "binary", ...)
    inputs: tuple[ValueInfo, ...] = ()
    outputs: tuple[ValueInfo, ...] = ()
    opsets: dict[str, int] = field(default_factory=dict)
    ir_version: int | None = None
    producer: str | None = None
    node_count: int | None = None
    # Where the graph's tensors keep their data: set only for the graph of a manifest.
    external_data: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        extra = {"external_data": list(self.external_data)} if self.external_data else {}
        return extra | {
            "format": self.format,
            "inputs": [v.to_wire() for v in self.inputs],
            "outputs": [v.to_wire() for v in self.outputs],
            "opsets": dict(self.opsets),
            "ir_version": self.ir_version,
            "producer": self.producer,
            "node_count": self.node_count,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ModelMetadata:
        def infos(items: list[dict[str, Any]]) -> tuple[ValueInfo, ...]:
            return tuple(
                ValueInfo(i["name"], i["type"], None if i["dims"] is None else tuple(i["dims"]))
                for i in items
            )

        return cls(
            format=value["format"],
            inputs=infos(value.get("inputs", [])),
            outputs=infos(value.get("outputs", [])),
            opsets=dict(value.get("opsets", {})),
            ir_version=value.get("ir_version"),
            producer=value.get("producer"),
            node_count=value.get("node_count"),
            external_data=tuple(value.get("external_data", ())),
        )


def sniff_format(path: Path) -> str:
    """Name the format of an opaque blob from its first bytes (never fails)."""
    with path.open("rb") as fh:
        return sniff_bytes(fh.read(_SNIFF_BYTES))


def sniff_bytes(head: bytes) -> str:
    """`sniff_format` of a file whose first bytes are ``head``."""
    head = head[:_SNIFF_BYTES]
    if head.startswith(b"GGUF"):
        return "gguf"
    if head[4:8] == b"TFL3":
        return "tflite"
    if len(head) > 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return "safetensors"
    if head.startswith(b"\0asm"):
        return "wasm"
    if head.lstrip()[:1] in (b"{", b"["):
        return "json"
    return "binary"


def read_onnx_metadata(path: Path) -> ModelMetadata:
    """Parse and check an ONNX model file; `model_invalid` / `model_unsafe` if it is not one."""
    import onnx  # imported lazily: it is slow to import and only imports need it

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise HostError("model_invalid", f"not an ONNX model: {_short(exc)}") from exc
    return _checked(model)


def onnx_metadata_of(data: bytes | bytearray | memoryview) -> ModelMetadata:
    """`read_onnx_metadata` of a file held in memory (the bytes being stored)."""
    import onnx

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise HostError("model_invalid", f"not an ONNX model: {_short(exc)}") from exc
    return _checked(model, bytes(data))  # the checker takes these bytes as they are


def _checked(model: Any, serialized: bytes | None = None) -> ModelMetadata:
    """Metadata of a parsed model, after the checks; ``serialized``: its bytes (else
    the checker serializes the model again)."""
    import onnx

    _refuse_external_data(model)
    try:
        onnx.checker.check_model(model if serialized is None else serialized)
    except Exception as exc:
        raise HostError(
            "model_invalid", f"the ONNX checker refused the model: {_short(exc)}"
        ) from exc
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p) or None
    return ModelMetadata(
        format="onnx",
        inputs=tuple(_value_info(v) for v in graph.input if v.name not in initializers),
        outputs=tuple(_value_info(v) for v in graph.output),
        opsets={(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import},
        ir_version=int(model.ir_version),
        producer=producer,
        node_count=sum(1 for _ in _all_nodes(graph)),
    )


def _value_info(value: Any) -> ValueInfo:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return ValueInfo(value.name, kind or "unknown", None)
    tensor = value.type.tensor_type
    type_name = ELEMENT_TYPES.get(int(tensor.elem_type), f"type{tensor.elem_type}")
    if not tensor.HasField("shape"):
        return ValueInfo(value.name, type_name, None)
    dims: list[int | str | None] = []
    for dim in tensor.shape.dim:
        which = dim.WhichOneof("value")
        dims.append(int(dim.dim_value) if which == "dim_value" else dim.dim_param or None)
    return ValueInfo(value.name, type_name, tuple(dims))


def _all_nodes(graph: Any) -> Iterator[Any]:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _all_nodes(attr.g)
            for sub in attr.graphs:
                yield from _all_nodes(sub)


def _subgraphs(nodes: Any) -> Iterator[Any]:
    """Every graph nested in `nodes` (If/Loop/Scan bodies), at any depth."""
    for node in nodes:
        for attr in node.attribute:
            nested = [attr.g] if attr.HasField("g") else []
            for sub in [*nested, *attr.graphs]:
                yield sub
                yield from _subgraphs(sub.node)


def _all_tensors(model: Any) -> Iterator[Any]:
    # Subgraphs and model-local functions carry tensors too; the onnx checker resolves
    # their external data against the current folder, so a name that happens to exist
    # there would otherwise let such a model through.
    node_lists = [model.graph.node, *(f.node for f in model.functions)]
    graphs = [model.graph, *(g for nodes in node_lists for g in _subgraphs(nodes))]
    for graph in graphs:
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
    for nodes in [*node_lists, *(g.node for g in graphs[1:])]:
        for node in nodes:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors


def _refuse_external_data(model: Any) -> None:
    import onnx

    for tensor in _all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if location.startswith(("/", "\\")) or ".." in location.replace("\\", "/").split("/"):
            raise HostError(
                "model_unsafe",
                f"tensor {tensor.name!r} points outside the model ({location!r})",
                tensor=tensor.name,
            )
        raise HostError(
            "model_invalid",
            f"tensor {tensor.name!r} keeps its data in a separate file ({location!r}); "
            "a single-file import cannot carry it: import the model's folder, or the "
            "graph with that file beside it, as one model manifest",
            tensor=tensor.name,
        )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def describe_file(path: Path) -> ModelMetadata:
    """ONNX metadata when the bytes are an ONNX model, else the sniffed format: the store
    holds any file (tokenizers, configs, other weight formats) that pages ask for. A
    model past the reader's caps is stored like any other file, without metadata."""
    try:
        return _describe(path)
    except OSError as exc:  # the disk failed reading our own temp file
        raise HostError("internal", f"cannot read {path}: {exc.strerror or exc}") from exc


def _describe(path: Path) -> ModelMetadata:
    # Imported here: onnx_wire builds on this module's value types.
    from webmodels.store.onnx_wire import WireCapped, WireInvalid, read_wire_metadata

    with open(path, "rb") as fh:
        # ONNX writers put ModelProto field 1 (ir_version, a varint: tag 0x08) first;
        # anything else is not worth reading as a model.
        if fh.read(1) == b"\x08":
            try:
                return read_wire_metadata(path)
            except WireCapped as exc:
                log.info("a model past the metadata caps is stored as a plain file: %s", exc)
            except WireInvalid:
                pass
    return ModelMetadata(format=sniff_format(path))
