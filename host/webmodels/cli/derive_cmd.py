"""``webmodels derive SHA|NAME --dtype fp16|int8|q4 [--format ort] [--opset N|LOW-HIGH]
[--external-data]``: make a
form of a stored ONNX model now (representations/deriver.py), in the shared scope, with
its progress on stderr. The form is checked against its source before it is kept; ``webmodels ls``
shows it under its source."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from webmodels.cli.main import CliContext
from webmodels.cli.output import human_bytes, print_json, print_kv
from webmodels.cli.store_cmd import _add, catalog_labels, resolve
from webmodels.errors import HostError
from webmodels.representations.choice import choose
from webmodels.representations.deriver import Deriver
from webmodels.representations.recipes import DTYPES, FORMATS, MIN_OPSET, Recipe
from webmodels.runtime.settings import SessionSettings
from webmodels.store import Store
from webmodels.store.records import ModelRecord


def register(sub: Any) -> None:
    p = _add(sub, "derive", cmd_derive, "make another form of a stored ONNX model (fp16, int8, q4)")
    p.add_argument("model", metavar="SHA|NAME", help="a SHA-256 (or 6+ hex digits) or NAME[@VER]")
    p.add_argument("--dtype", choices=DTYPES, default="fp32", help="element type of the form")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="onnx",
        help="file format of the form (ort: ONNX Runtime's own, made by its converter)",
    )
    p.add_argument(
        "--opset",
        type=opset_arg,
        metavar="N|LOW-HIGH",
        help=(
            f"convert to ONNX opset N (from {MIN_OPSET} to the installed onnx's newest); "
            "a range such as 17-21 keeps a model already in it as it is and converts "
            "any other to the highest opset in the range that onnx knows"
        ),
    )
    p.add_argument(
        "--external-data",
        action="store_true",
        help=(
            "split the form into model.onnx and model.onnx_data (tensors of 1 KiB or more "
            "in the second file), stored as a manifest of the two"
        ),
    )


def opset_arg(text: str) -> tuple[int | None, tuple[int, int] | None]:
    """``--opset``: a number, or a range ``LOW-HIGH`` as pages may ask (choice.py):
    (opset, None) or (None, (lowest, highest))."""
    try:
        target = choose({"opset": int(text) if text.isdigit() else text})
    except HostError as error:
        raise argparse.ArgumentTypeError(error.message.replace("representation.", "--")) from error
    return target.opset, target.opset_range


def cmd_derive(args: argparse.Namespace, ctx: CliContext, store: Store) -> int:
    opset, opset_range = args.opset or (None, None)
    asked = {"dtype": args.dtype, "format": args.format, "opset": opset}
    recipe = Recipe.parse(asked | {"external_data": bool(args.external_data)})
    recipe = replace(recipe, opset_range=opset_range)
    if recipe.identity:
        raise HostError(
            "bad_request",
            "give --dtype fp16|int8|q4, --format ort, --opset N|LOW-HIGH or --external-data: "
            "fp32 is the source",
        )
    source = find_model(store, args.model)
    recipe = recipe.for_source(source.metadata.opsets)
    if recipe.identity:
        low, high = opset_range or (0, 0)
        raise HostError(
            "bad_request",
            f"the model's opset is already in {low}-{high} and it is fp32 ONNX: nothing to derive",
        )
    settings = SessionSettings.from_config(ctx.config.extra)
    deriver = Deriver(store, settings, is_common=lambda record: True)

    def stage(name: str) -> None:
        print(f"{name} ...", file=sys.stderr, flush=True)

    try:
        form = deriver.form(source, recipe, partition=None, stage=stage)
    finally:
        deriver.close()
    assert form.provenance is not None
    made = {
        "sha256": form.record.digest.hex,
        "size": form.record.size,
        "derived_from": source.digest.hex,
        **form.provenance.to_json(),
    }
    if form.files:  # an external-data split: its files, stored as one manifest
        made["files"] = {part.path: part.to_wire() for part in form.files}
    if ctx.json:
        print_json(made)
        return 0
    print_kv(
        {
            "form": form.record.digest.hex,
            "of": source.digest.hex,
            "recipe": recipe.key(),
            "size": f"{human_bytes(form.record.size)} (source {human_bytes(source.size)})",
            "max error": f"{form.provenance.max_error:.3g} (tolerance {recipe.tolerance:g})",
        }
        | {part.path: f"{part.digest.hex} ({human_bytes(part.size)})" for part in form.files}
    )
    return 0


def find_model(store: Store, text: str) -> ModelRecord:
    """A SHA-256 (or a unique prefix), else a name, ``NAME@VERSION`` to pick a version."""
    hexdigits = text.lower().removeprefix("sha256:")
    if all(c in "0123456789abcdef" for c in hexdigits) and len(hexdigits) >= 6:
        return resolve(store, text)
    name, _, version = text.partition("@")
    labels = catalog_labels(store)
    found = []
    for record in store.list_models():
        label = (record.name, record.version) if record.name else labels.get(record.digest)
        if label is not None and label[0] == name and (not version or label[1] == version):
            found.append(record)
    if not found:
        raise HostError("not_found", f"no stored model named {text!r}")
    if len(found) > 1:
        raise HostError("bad_request", f"{len(found)} models are named {text!r}; give NAME@VERSION")
    return found[0]
