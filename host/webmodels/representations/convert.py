"""Making a form of a model and checking it against its source: runs only in the
runtime worker (runtime/worker.py, ``op_derive``), which bounds its memory and time.

* `derive`: the recipe applied to the source's bytes: opset first
  (``onnx.version_converter``), then the dtype: fp16 by onnxconverter-common (inputs
  and outputs stay fp32, so a page feeds the same tensors to every form), int8 by ONNX
  Runtime's dynamic quantization (weights int8, activations quantized at run time),
  q4 by ONNX Runtime's weight-only quantizer (``matmul_nbits_quantizer``: each MatMul
  with constant weights becomes a ``MatMulNBits`` with 4-bit symmetric weights in
  blocks of `Q4_BLOCK`; a model with none has no q4 form, ``representation_unavailable``),
  then the format: ``ort`` by ONNX Runtime's own converter (what
  ``onnxruntime.tools.convert_onnx_models_to_ort`` does: a CPU session that saves its
  graph in the ORT format), at the basic optimization level only, so the form holds
  no fusions of one execution provider and runs in ONNX Runtime Web too.
  No step reads a clock or a random source, so the same source, recipe and tool
  versions give the same bytes, except in the ORT format: ONNX Runtime's serializer
  (1.31) writes some tables in an order that changes from run to run (measured: an
  int8 graph gives other bytes on every conversion, even in one process and with no
  optimization), so an ORT form's provenance says ``deterministic: no``
  (`NOT_DETERMINISTIC`) instead of claiming it.
* `derive_files` with ``external_data``: the form (as above) split by `split_external`
  into a graph and one file of its tensors (onnx's external-data format), lossless.
* `max_error`: both graphs run in ONNX Runtime on the CPU on the same inputs, built
  from the source's input shapes and types with a fixed seed; the answer is the
  largest relative error of any output (`relative_error`).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from webmodels.errors import HostError
from webmodels.representations.recipes import DATA_FILE, Recipe

SEED = 20261206
# The sizes tried, in order, for a dimension the graph leaves open (batch, sequence,
# samples): small first; larger where a model needs it (an audio model's padding).
SYMBOLIC_DIMS = (2, 64)
INT_HIGH = 2  # integer samples are 0 or 1: valid ids for any embedding or mask
Q4_BLOCK = 32  # weights per 4-bit block (one scale each): ORT's kernels take 16 to 256
SPLIT_THRESHOLD = 1024  # bytes: smaller tensors stay in the graph (onnx's own default)


# Recorded with the tool versions of a form whose bytes may differ from one derivation
# to the next (deriver.py), so provenance never claims what was not so.
NOT_DETERMINISTIC = {"ort": "no"}


def tool_versions(ort: Any, recipe: Recipe | None = None) -> dict[str, str]:
    """The versions of the tools that make ``recipe``'s bytes (provenance)."""
    import numpy
    import onnx
    import onnxconverter_common

    tools = {
        "onnx": str(onnx.__version__),
        "onnxruntime": str(ort.__version__),
        "onnxconverter_common": str(onnxconverter_common.__version__),
        "numpy": str(numpy.__version__),
    }
    if recipe is not None and recipe.dtype == "q4":  # ORT's quantizer builds on onnx-ir
        import onnx_ir

        tools["onnx_ir"] = str(onnx_ir.__version__)
    return tools


def derive_files(ort: Any, data: bytes, recipe: Recipe, out: Path) -> dict[str, Any]:
    """Write ``recipe``'s form of the model ``data`` to ``out`` (with external data: its
    graph there and its tensors in `DATA_FILE` beside it) and measure it against the
    source; the host decides whether it is kept."""
    derived = derive(data, replace(recipe, external_data=False))
    if recipe.external_data:
        graph, tensors = split_external(derived)
        out.write_bytes(graph)
        (out.parent / DATA_FILE).write_bytes(tensors)
        error = max_error(ort, data, str(out))  # ONNX Runtime reads the tensors beside it
    else:
        out.write_bytes(derived)
        error = max_error(ort, data, derived)
    return {"max_error": error, "tools": tool_versions(ort, recipe)}


def split_external(data: bytes) -> tuple[bytes, bytes]:
    """The ONNX model ``data`` as a graph whose tensors of `SPLIT_THRESHOLD` bytes or
    more lie in one file, `DATA_FILE` (what ``onnx.save_model(...,
    save_as_external_data=True)`` writes), and that file's bytes. Deterministic: the
    tensors in graph order, the graph serialized deterministically.
    ``representation_unavailable`` when no tensor is that large (nothing to move)."""
    import onnx
    from onnx import external_data_helper

    model = onnx.load_from_string(data)
    external_data_helper.convert_model_to_external_data(
        model, all_tensors_to_one_file=True, location=DATA_FILE, size_threshold=SPLIT_THRESHOLD
    )
    with tempfile.TemporaryDirectory(prefix="webmodels-split-") as folder:
        external_data_helper.write_external_data_tensors(model, folder)
        written = Path(folder) / DATA_FILE
        if not written.is_file():  # no tensor was large enough to move
            raise HostError(
                "representation_unavailable",
                f"this model has no tensor of {SPLIT_THRESHOLD} bytes or more to keep in "
                "external data; load it as it is",
            )
        tensors = written.read_bytes()
    return bytes(model.SerializeToString(deterministic=True)), tensors


def derive(data: bytes, recipe: Recipe) -> bytes:
    """The bytes of ``recipe``'s form of the model ``data`` (one file: not split)."""
    import onnx

    model = onnx.load_from_string(data)
    if recipe.opset is not None:
        model = _convert_opset(model, recipe.opset)
    try:
        if recipe.dtype == "fp16":
            from onnxconverter_common import float16

            model = float16.convert_float_to_float16(model, keep_io_types=True)
        elif recipe.dtype == "int8":
            model = _quantize(model)
        elif recipe.dtype == "q4":
            model = _quantize_q4(model)
    except HostError:
        raise
    except Exception as exc:  # e.g. weights in Constant nodes, which quantization refuses
        raise HostError(
            "model_invalid", f"cannot make the {recipe.dtype} form of this model: {_short(exc)}"
        ) from exc
    data = bytes(model.SerializeToString(deterministic=True))
    return to_ort(data) if recipe.format == "ort" else data


def to_ort(data: bytes) -> bytes:
    """The ONNX model ``data`` in ONNX Runtime's ORT format, optimized at the basic
    level (constant folding, redundant nodes removed: nothing specific to one
    execution provider)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="webmodels-ort-") as folder:
        target = Path(folder) / "form.ort"
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = 1  # a background job: one core at most
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(target)
        options.add_session_config_entry("session.save_model_format", "ORT")
        try:
            ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT's own error types
            raise HostError(
                "model_invalid", f"cannot make the ORT format of this model: {_short(exc)}"
            ) from exc
        return target.read_bytes()


def _convert_opset(model: Any, opset: int) -> Any:
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, opset)
    except Exception as exc:  # the converter raises bare RuntimeErrors
        raise HostError(
            "model_invalid", f"cannot convert this model to opset {opset}: {_short(exc)}"
        ) from exc


def _quantize(model: Any) -> Any:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic works on files; a private folder, removed afterwards.
    with tempfile.TemporaryDirectory(prefix="webmodels-int8-") as folder:
        source, target = Path(folder) / "source.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(model.SerializeToString())
        quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        return onnx.load(str(target))


def _quantize_q4(model: Any) -> Any:
    """4-bit weights of every MatMul whose weights are constants (ONNX Runtime's
    ``MatMulNBits``, a contrib op that ONNX Runtime Web runs on WASM and WebGPU too)."""
    import logging

    if not _has_matmul_weights(model.graph):  # before the quantizer's slow import
        raise _no_q4()
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    # The quantizer logs each node at INFO on the root handler: not the host's log.
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    config = DefaultWeightOnlyQuantConfig(block_size=Q4_BLOCK, is_symmetric=True)
    quantizer = MatMulNBitsQuantizer(
        model, block_size=Q4_BLOCK, is_symmetric=True, algo_config=config
    )
    quantizer.process()
    quantized = quantizer.model.model
    if not any(node.op_type == "MatMulNBits" for node in quantized.graph.node):
        raise _no_q4()
    return quantized


def _has_matmul_weights(graph: Any, outer: frozenset[str] = frozenset()) -> bool:
    """Whether a MatMul of ``graph`` (or of a subgraph) multiplies by an initializer."""
    constants = outer | {tensor.name for tensor in graph.initializer}
    for node in graph.node:
        if node.op_type == "MatMul" and len(node.input) == 2 and node.input[1] in constants:
            return True
        for attribute in node.attribute:
            subgraphs = [attribute.g] if attribute.HasField("g") else list(attribute.graphs)
            if any(_has_matmul_weights(sub, constants) for sub in subgraphs):
                return True
    return False


def _no_q4() -> HostError:
    return HostError(
        "representation_unavailable",
        "this model has no q4 form: 4-bit quantization replaces the weights of MatMul "
        "nodes, and it has no MatMul with constant weights; ask for int8 or fp16",
    )


def max_error(ort: Any, source: bytes, derived: bytes | str) -> float:
    """The largest relative error of the derived form's outputs on sample inputs
    (``derived``: its bytes, or the path of a graph with external data beside it)."""

    reference = _session(ort, source)
    feeds, expected = _reference_run(reference)
    try:
        got = _session(ort, derived).run(None, feeds)
    except Exception as exc:
        raise HostError("model_invalid", f"the derived form does not run: {_short(exc)}") from exc
    if len(got) != len(expected):
        return float("inf")
    return max((relative_error(a, b) for a, b in zip(expected, got, strict=True)), default=0.0)


def _reference_run(session: Any) -> tuple[dict[str, Any], list[Any]]:
    """Sample inputs the source runs on, and its outputs; ``model_invalid`` when it
    runs on none of them (then no form can be checked, so none is made)."""
    import numpy as np

    failure: Exception | None = None
    for size in SYMBOLIC_DIMS:
        feeds = sample_inputs(session, np.random.default_rng(SEED), open_dim=size)
        try:
            return feeds, session.run(None, feeds)
        except Exception as exc:  # ORT's own error types; tried with the next size
            failure = exc
    raise HostError(
        "model_invalid",
        "this model does not run on the sample inputs the check makes, so no form of it "
        f"can be checked: {_short(failure or Exception())}",
    )


def relative_error(expected: Any, got: Any) -> float:
    """max |expected - got| / max(1, max |expected|): absolute near zero, relative for
    large outputs; infinite for another shape or a NaN the source does not have."""
    import numpy as np

    a = np.asarray(expected, dtype=np.float64)
    b = np.asarray(got, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    if np.any(np.isnan(b) & ~np.isnan(a)):
        return float("inf")
    both = ~(np.isnan(a) & np.isnan(b))
    diff = np.abs(a - b)[both]
    scale = max(1.0, float(np.max(np.abs(a[both]), initial=0.0)))
    worst = float(np.max(diff, initial=0.0))
    return worst / scale if np.isfinite(worst) else float("inf")


def sample_inputs(session: Any, rng: Any, *, open_dim: int = SYMBOLIC_DIMS[0]) -> dict[str, Any]:
    """Deterministic inputs for every graph input: open dimensions are ``open_dim``,
    floats standard normal, integers and booleans 0 or 1."""
    import numpy as np

    feeds: dict[str, Any] = {}
    for arg in session.get_inputs():
        shape = [d if isinstance(d, int) and d >= 0 else open_dim for d in arg.shape or []]
        kind = str(arg.type)
        if "float" in kind or "double" in kind:
            dtype = {"tensor(float16)": np.float16, "tensor(double)": np.float64}.get(
                kind, np.float32
            )
            feeds[arg.name] = rng.standard_normal(shape).astype(dtype)
        elif kind == "tensor(bool)":
            feeds[arg.name] = rng.integers(0, 2, size=shape).astype(np.bool_)
        elif "int" in kind:
            numpy_type = np.dtype(kind[len("tensor(") : -1])
            feeds[arg.name] = rng.integers(0, INT_HIGH, size=shape).astype(numpy_type)
        else:
            raise HostError("model_invalid", f"cannot make sample inputs of type {kind}")
    return feeds


def _session(ort: Any, data: bytes | str) -> Any:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1  # a background job: one core at most
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def _short(exc: Exception) -> str:
    line = " ".join(str(exc).split())
    return line if len(line) <= 300 else line[:297] + "..."
