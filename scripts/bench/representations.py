"""Representations: what deriving each form costs, per corpus model (docs/models.md).

For every model and recipe (fp16, int8, q4): the time to derive it and to check it against
its source (representations/convert.py, the code the runtime worker runs, here in
this process), its size, the check's largest relative error and whether it is kept
(within the dtype's tolerance), and the bytes a second form would cost with storage
by tensor (store/segments): the bytes of the form's initializers whose contents the
source does not have (a tensor-level estimate; graph bytes excluded).

Then, in the live store (unless ``--no-store``): each model imported into two fresh
stores, one keeping files whole and one as segments (``[store] segments = true``),
and each form (an opset conversion, the external-data split, fp16, int8, q4) derived
there by the host's own deriver in a runtime worker; per form its logical bytes and the
physical bytes it added on disk in each store (files under the store, each inode once,
and the recipes in the index), the same run.

Usage: .venv/bin/python scripts/bench/representations.py [--models magika,ocr-cls]
       [--rounds 1] [--json PATH] [--no-store | --store-only]
On a loaded machine the times mean little; sizes and errors do not depend on load.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.models import REAL_MODELS, real_model  # noqa: E402
from webmodels.config import Config  # noqa: E402
from webmodels.representations import convert  # noqa: E402
from webmodels.representations.deriver import Deriver  # noqa: E402
from webmodels.representations.recipes import Recipe  # noqa: E402
from webmodels.runtime.client import Runtime, WorkerOptions  # noqa: E402
from webmodels.runtime.settings import SessionSettings  # noqa: E402
from webmodels.store.segments import reaper  # noqa: E402
from webmodels.store.store import Store  # noqa: E402

STORE_FORMS = {
    "opset 18": Recipe(opset=18),
    "split": Recipe(external_data=True),
    "fp16": Recipe("fp16"),
    "int8": Recipe("int8"),
    "q4": Recipe("q4"),
}


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


@dataclass(frozen=True)
class StoreRow:
    model: str
    form: str
    logical_bytes: int
    physical_segments: int  # bytes the form added on disk, segments on
    physical_whole: int  # the same, files kept whole
    derive_s_segments: float  # derive, check and store through the host's deriver
    derive_s_whole: float


def physical_bytes(store: Store) -> int:
    """Bytes of the files under the store (each inode once; the index excepted) and of
    the recipes in the index, once the segment reaper removed what it was given."""
    reaper.drain(timeout_s=120.0)
    seen: set[int] = set()
    total = 0
    for folder, _, names in os.walk(store.root):
        for name in names:
            if ".sqlite" in name or ".db" in name:
                continue
            info = os.lstat(os.path.join(folder, name))
            if info.st_ino not in seen:
                seen.add(info.st_ino)
                total += info.st_size
    row = store.index.query("SELECT TOTAL(LENGTH(recipe)) FROM recipes")[0]
    return total + int(row[0] or 0)


def store_costs(name: str, path: Path, runtime: Runtime, root: Path) -> list[StoreRow]:
    """What each form costs on disk with segments on and off (see the module doc)."""
    found: dict[bool, dict[str, tuple[int, int, float]]] = {}
    for segments in (True, False):
        config = Config(
            home=root / f"{name}-{segments}", log_dir=root / "logs", store_segments=segments
        )
        found[segments] = {}
        with Store.open(config) as store:
            deriver = Deriver(store, SessionSettings(), is_common=lambda _: False, runtime=runtime)
            before = physical_bytes(store)
            record = store.import_file(path).model
            after = physical_bytes(store)
            found[segments]["source"] = (record.size, after - before, 0.0)
            for form_name, recipe in STORE_FORMS.items():
                before, start = after, time.perf_counter()
                try:
                    form = deriver.form(record, recipe, partition=None)
                except Exception as exc:  # a converter that cannot take this model
                    if segments:  # said once per model and form
                        print(f"{name:<11} {form_name:<8} cannot derive: {_short(exc)}")
                    continue
                took = time.perf_counter() - start
                after = physical_bytes(store)
                logical = sum(p.size for p in form.files) or form.record.size
                found[segments][form_name] = (logical, after - before, took)
    rows = []
    for form_name, (logical, on, took_on) in found[True].items():
        if form_name in found[False]:
            _, off, took_off = found[False][form_name]
            rows.append(StoreRow(name, form_name, logical, on, off, took_on, took_off))
    return rows


def _short(exc: Exception) -> str:
    line = " ".join(str(exc).split())
    return line if len(line) <= 120 else line[:117] + "..."


def print_store_rows(rows: list[StoreRow]) -> None:
    for row in rows:
        print(
            f"{row.model:<11} {row.form:<8} {row.logical_bytes:>11,} "
            f"{row.physical_segments:>11,} {row.physical_whole:>11,} "
            f"{row.derive_s_segments:>7.2f} {row.derive_s_whole:>7.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="magika,ocr-cls,ocr-det,silero-vad")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--no-store", action="store_true", help="only the in-process figures")
    which.add_argument("--store-only", action="store_true", help="only the store's figures")
    args = parser.parse_args(argv)
    names = args.models.split(",")
    for name in names:
        if name not in REAL_MODELS:
            raise SystemExit(f"unknown model {name}; known: {', '.join(REAL_MODELS)}")
    rows = [] if args.store_only else in_process(names, args.rounds)
    store_rows: list[StoreRow] = []
    if not args.no_store:
        print(
            f"\n{'model':<11} {'form':<8} {'logical':>11} {'+ segments':>11} "
            f"{'+ whole':>11} {'s seg':>7} {'s whole':>7}   (bytes on disk each form added)"
        )
        runtime = Runtime(WorkerOptions(background=True))
        try:
            with tempfile.TemporaryDirectory(prefix="representations-") as root:
                for name in names:
                    found = store_costs(name, real_model(name), runtime, Path(root))
                    print_store_rows(found)
                    store_rows += found
        finally:
            runtime.close()
    if args.json:
        document: dict[str, Any] = {
            "rows": [asdict(row) for row in rows],
            "store": [asdict(row) for row in store_rows],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


def in_process(names: list[str], rounds: int) -> list[Row]:
    rows: list[Row] = []
    print(
        f"{'model':<11} {'form':<6} {'source':>10} {'form':>10} {'new tensors':>11} "
        f"{'derive s':>8} {'check s':>7} {'max error':>9}  kept"
    )
    for name in names:
        data = real_model(name).read_bytes()
        for recipe in (Recipe("fp16"), Recipe("int8"), Recipe("q4")):
            try:
                row = measure(name, data, recipe, rounds)
            except Exception as exc:  # a converter that cannot take this model
                print(f"{name:<11} {recipe.dtype:<6} cannot derive: {type(exc).__name__}: {exc}")
                continue
            rows.append(row)
            print(
                f"{row.model:<11} {row.recipe:<6} {row.source_bytes:>10,} {row.form_bytes:>10,} "
                f"{row.new_tensor_bytes:>11,} {row.derive_s:>8.2f} {row.check_s:>7.2f} "
                f"{row.max_error:>9.2g}  {'yes' if row.kept else 'REFUSED'}"
            )
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
