"""Representations: what deriving each form costs, per corpus model (docs/models.md).

For every model and recipe (fp16, int8, q4): the time to derive it and to check it against
its source (representations/convert.py, the code the runtime worker runs, here in
this process), its size, the check's largest relative error and whether it is kept
(within the dtype's tolerance), and the bytes a second form would cost with storage
by tensor (store/segments): the bytes of the form's initializers whose contents the
source does not have (a tensor-level estimate; graph bytes excluded).

Usage: .venv/bin/python scripts/bench/representations.py [--models magika,ocr-cls]
       [--rounds 1] [--json PATH]
On a loaded machine the times mean little; sizes and errors do not depend on load.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.models import REAL_MODELS, real_model  # noqa: E402
from webmodels.representations import convert  # noqa: E402
from webmodels.representations.recipes import Recipe  # noqa: E402


@dataclass(frozen=True)
class Row:
    model: str
    recipe: str
    source_bytes: int
    form_bytes: int
    new_tensor_bytes: int
    derive_s: float
    check_s: float
    max_error: float
    tolerance: float
    kept: bool


def tensor_hashes(data: bytes) -> dict[str, int]:
    """SHA-256 of each initializer's bytes (main graph) -> its size."""
    model = onnx.load_from_string(data)
    found: dict[str, int] = {}
    for tensor in model.graph.initializer:
        raw = tensor.SerializeToString()
        found[hashlib.sha256(raw).hexdigest()] = len(raw)
    return found


def measure(name: str, data: bytes, recipe: Recipe, rounds: int) -> Row:
    derive_s, check_s = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        form = convert.derive(data, recipe)
        derive_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        error = convert.max_error(ort, data, form)
        check_s.append(time.perf_counter() - start)
    source, made = tensor_hashes(data), tensor_hashes(form)
    new = sum(size for digest, size in made.items() if digest not in source)
    return Row(
        model=name,
        recipe=recipe.dtype if recipe.opset is None else f"{recipe.dtype} opset {recipe.opset}",
        source_bytes=len(data),
        form_bytes=len(form),
        new_tensor_bytes=new,
        derive_s=sorted(derive_s)[len(derive_s) // 2],
        check_s=sorted(check_s)[len(check_s) // 2],
        max_error=error,
        tolerance=recipe.tolerance,
        kept=error <= recipe.tolerance,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="magika,ocr-cls,ocr-det,silero-vad")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows: list[Row] = []
    print(
        f"{'model':<11} {'form':<6} {'source':>10} {'form':>10} {'new tensors':>11} "
        f"{'derive s':>8} {'check s':>7} {'max error':>9}  kept"
    )
    for name in args.models.split(","):
        if name not in REAL_MODELS:
            raise SystemExit(f"unknown model {name}; known: {', '.join(REAL_MODELS)}")
        data = real_model(name).read_bytes()
        for recipe in (Recipe("fp16"), Recipe("int8"), Recipe("q4")):
            try:
                row = measure(name, data, recipe, args.rounds)
            except Exception as exc:  # a converter that cannot take this model
                print(f"{name:<11} {recipe.dtype:<6} cannot derive: {type(exc).__name__}: {exc}")
                continue
            rows.append(row)
            print(
                f"{row.model:<11} {row.recipe:<6} {row.source_bytes:>10,} {row.form_bytes:>10,} "
                f"{row.new_tensor_bytes:>11,} {row.derive_s:>8.2f} {row.check_s:>7.2f} "
                f"{row.max_error:>9.2g}  {'yes' if row.kept else 'REFUSED'}"
            )
    if args.json:
        document: dict[str, Any] = {"rows": [asdict(row) for row in rows]}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
