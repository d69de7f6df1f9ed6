"""What the host refuses to hand to ONNX Runtime. Pure: a parsed ``ModelProto`` in,
`HostError` out (``model_unsafe``, ``too_large`` or ``model_invalid``).

Runs in the worker on the exact bytes it will give ONNX Runtime, after their SHA-256
matched, so nothing can change in between. The checks come from real attacks:

* External data. onnx and ONNX Runtime resolve ``location`` against the model's
  folder, and have had path traversal through it again and again (CVE-2022-25882,
  CVE-2024-27318, CVE-2024-5187, …). The host never lets them resolve anything: a
  location must name a file of the model's own manifest, which the host hands over
  itself. Absolute paths, ``..``, links (symbolic or hard, which point at bytes outside
  the model) and anything not listed are refused, and so is external data inside
  sparse tensors (their values and indices are resolved by separate code paths).
* Custom operators. A node of a domain ONNX Runtime does not implement would need a
  custom-op library; the host never loads one (no ``register_custom_ops_library``),
  so such models are refused with a clear reason instead of ORT's "no kernel".
* ``EPContext`` nodes carry a precompiled engine, or a path to one
  (``ep_cache_context`` with ``embed_mode=0``). The host compiles models itself and
  accepts such nodes only in graphs it produced, with the engine embedded.
* Size: node count and declared tensor sizes are capped before ORT allocates.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from webmodels.errors import HostError

# Operator domains ONNX Runtime implements itself (CPU, CUDA, TensorRT builds). The
# nchwc/nhwc ones appear in graphs ORT optimized; "" is the default ai.onnx domain.
BUILTIN_DOMAINS = frozenset(
    {
        "",
        "ai.onnx",
        "ai.onnx.ml",
        "ai.onnx.preview.training",
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.microsoft.experimental",
        "com.ms.internal.nhwc",
    }
)
_EXTERNAL = 1  # onnx.TensorProto.DataLocation.EXTERNAL
_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8}
_ITEMSIZE |= {15: 16, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1, 21: 1, 22: 1, 23: 1}


@dataclass(frozen=True, slots=True)
class ModelLimits:
    max_nodes: int = 500_000
    max_tensor_bytes: int = 8 << 30  # one declared tensor (initializer, input, output)


def check_model(
    model: Any,
    *,
    limits: ModelLimits,
    external_files: Mapping[str, int] | None = None,
    model_dir: Path | None = None,
    derived: bool = False,
) -> None:
    """Refuse what the module docstring lists. ``external_files`` maps the names of
    the model's manifest files to their sizes (the external data of a model manifest,
    or the weights of a graph the host optimized itself); ``model_dir`` is where a
    pre-installed model lies, used only to say why a name was refused; ``derived``
    marks a graph the host produced."""
    files = dict(external_files or {})
    local_functions = {(f.domain, f.name) for f in model.functions}
    for count, node in enumerate(all_nodes(model), start=1):
        if count > limits.max_nodes:
            raise HostError(
                "too_large",
                f"the model has more than {limits.max_nodes} nodes (the host's limit)",
                limit=limits.max_nodes,
            )
        _check_node(node, local_functions, derived=derived)
    for tensor, sparse in _all_tensors(model):
        _check_tensor_size(tensor, limits)
        if tensor.data_location == _EXTERNAL:
            _check_external(tensor, sparse=sparse, files=files, model_dir=model_dir)
    for value in _all_value_infos(model):
        _check_declared_shape(value, limits)


def _check_node(node: Any, local_functions: set[tuple[str, str]], *, derived: bool) -> None:
    domain = node.domain
    if (domain, node.op_type) in local_functions:
        return
    if domain not in BUILTIN_DOMAINS:
        raise HostError(
            "model_unsafe",
            f"operator {node.op_type!r} of domain {domain!r} needs a custom-op library; "
            "the host never loads those",
            domain=domain,
            op_type=node.op_type,
        )
    if node.op_type == "EPContext" and domain == "com.microsoft":
        embedded = any(a.name == "embed_mode" and a.i == 1 for a in node.attribute)
        if not (derived and embedded):
            raise HostError(
                "model_unsafe",
                "the model holds a precompiled EPContext node; the host compiles models "
                "itself and does not load engines named by a model",
                op_type=node.op_type,
            )


def _check_external(
    tensor: Any, *, sparse: bool, files: Mapping[str, int], model_dir: Path | None
) -> None:
    name = tensor.name or "(unnamed)"
    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")

    def refuse(why: str) -> HostError:
        return HostError("model_unsafe", f"tensor {name!r} {why} ({location!r})", tensor=name)

    if sparse:
        raise refuse("is a sparse tensor with external data, which the host refuses")
    if not location:
        raise refuse("names no file for its external data")
    pure = PurePosixPath(location.replace("\\", "/"))
    if pure.is_absolute() or (pure.parts and ":" in pure.parts[0]):
        raise refuse("points to an absolute path outside the model")
    if ".." in pure.parts:
        raise refuse("points outside the model's folder")
    link = _link_kind(model_dir, pure) if model_dir is not None else None
    if link is not None:
        raise refuse(f"points to a {link}, which may lead outside the model")
    if location not in files:
        raise refuse(
            "keeps its data in a file that is not part of the model's manifest "
            "(external data is accepted only through a model manifest)"
        )
    try:
        offset = int(entries.get("offset", "0"))
        length = int(entries["length"]) if "length" in entries else files[location] - offset
    except ValueError as exc:
        raise refuse("has a malformed offset or length") from exc
    if offset < 0 or length < 0 or offset + length > files[location]:
        raise refuse(f"reads bytes {offset}..{offset + length} past the end of its file")


def _link_kind(folder: Path, relative: PurePosixPath) -> str | None:
    """Whether ``folder/relative`` is a link (only ``lstat``; nothing is opened)."""
    try:
        info = os.lstat(folder.joinpath(*relative.parts))
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return "symbolic link"
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        return "hard link"
    return None


def _check_tensor_size(tensor: Any, limits: ModelLimits) -> None:
    if any(d < 0 for d in tensor.dims):
        raise HostError("model_invalid", f"tensor {tensor.name!r} has a negative dimension")
    size = math.prod(tensor.dims) * _ITEMSIZE.get(tensor.data_type, 1)
    if size > limits.max_tensor_bytes:
        raise HostError(
            "too_large",
            f"tensor {tensor.name!r} declares {size} bytes, over the host's limit of "
            f"{limits.max_tensor_bytes}",
            tensor=tensor.name,
        )


def _check_declared_shape(value: Any, limits: ModelLimits) -> None:
    if value.type.WhichOneof("value") != "tensor_type":
        return
    tensor = value.type.tensor_type
    # Exporters write -1 (Paddle) or leave the dimension out for "any size": only the
    # dimensions declared as numbers >= 0 count.
    dims = [d.dim_value for d in tensor.shape.dim if d.WhichOneof("value") == "dim_value"]
    size = math.prod(d for d in dims if d >= 0) * _ITEMSIZE.get(tensor.elem_type, 1)
    if size > limits.max_tensor_bytes:
        raise HostError(
            "too_large",
            f"value {value.name!r} declares {size} bytes, over the host's limit of "
            f"{limits.max_tensor_bytes}",
            tensor=value.name,
        )


# -- walking every graph, node and tensor (subgraphs and model-local functions too) ----


def graphs(model: Any) -> Iterator[Any]:
    yield model.graph
    yield from _subgraphs(model.graph.node)
    for function in model.functions:
        yield from _subgraphs(function.node)


def _subgraphs(nodes: Any) -> Iterator[Any]:
    for node in nodes:
        for attr in node.attribute:
            for graph in [attr.g] if attr.HasField("g") else []:
                yield graph
                yield from _subgraphs(graph.node)
            for graph in attr.graphs:
                yield graph
                yield from _subgraphs(graph.node)


def all_nodes(model: Any) -> Iterator[Any]:
    for graph in graphs(model):
        yield from graph.node
    for function in model.functions:
        yield from function.node


def _all_tensors(model: Any) -> Iterator[tuple[Any, bool]]:
    """Every TensorProto with whether it belongs to a sparse tensor."""
    for graph in graphs(model):
        for tensor in graph.initializer:
            yield tensor, False
        for sparse in graph.sparse_initializer:
            yield sparse.values, True
            yield sparse.indices, True
    for node in all_nodes(model):
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t, False
            for tensor in attr.tensors:
                yield tensor, False
            sparse_tensors = [attr.sparse_tensor] if attr.HasField("sparse_tensor") else []
            for sparse in [*sparse_tensors, *attr.sparse_tensors]:
                yield sparse.values, True
                yield sparse.indices, True


def _all_value_infos(model: Any) -> Iterator[Any]:
    for graph in graphs(model):
        yield from graph.input
        yield from graph.output
        yield from graph.value_info
