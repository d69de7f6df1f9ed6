"""What form a model is asked in (`Recipe`), parsed once from a request. Pure.

A recipe names a form, not a runtime: ``dtype`` (fp32, fp16, int8 by dynamic
quantization, q4: 4-bit MatMul weights), ``format`` (onnx, or ONNX Runtime's ort) and
an ``opset`` (None: the source's own). Each dtype has a tolerance: the largest error
of a derived form's outputs against its source's, relative to the size of the source's
outputs (`relative_error`), that it may have before it is refused.

A page may ask an opset range (``opset_range``); `Recipe.for_source` turns it into a
concrete recipe for one source before anything is looked up or derived.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from webmodels.errors import HostError
from webmodels.representations.choice import DTYPES, MIN_OPSET, from_wire, max_opset

__all__ = ["DTYPES", "FORMATS", "MIN_OPSET", "TOLERANCE", "Recipe"]


def __getattr__(name: str) -> int:
    if name == "MAX_OPSET":  # loads onnx: only when asked (choice.max_opset)
        return max_opset()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


FORMATS = ("onnx", "ort")  # what the host derives
DATA_GRAPH, DATA_FILE = "model.onnx", "model.onnx_data"  # the files of an external-data split
RECIPE_FORMAT = 1  # bump when the same recipe makes other bytes (a new conversion step)
# Largest relative error of any output (see relative_error), per dtype. fp16 keeps
# about 3 decimal digits; dynamic int8 quantization of activations loses more; 4-bit
# weights (16 levels per block of 32) about one digit: measured 0.09 for one random
# 64-wide layer, 0.2 for two stacked ones; a broken form is off by 1 or more.
TOLERANCE: Mapping[str, float] = {"fp32": 1e-4, "fp16": 1e-2, "int8": 1e-1, "q4": 2.5e-1}


@dataclass(frozen=True, slots=True)
class Recipe:
    dtype: str = "fp32"
    format: str = "onnx"
    opset: int | None = None
    # (lowest, highest) a page accepts; None once resolved (`for_source`)
    opset_range: tuple[int, int] | None = None
    # Split: the graph in DATA_GRAPH, its tensors in DATA_FILE beside it (lossless)
    external_data: bool = False

    @property
    def tolerance(self) -> float:
        return TOLERANCE[self.dtype]

    @property
    def identity(self) -> bool:
        """Whether the recipe asks for the source as it is (no derivation)."""
        return (
            self.dtype == "fp32"
            and self.format == "onnx"
            and self.opset is None
            and self.opset_range is None
            and not self.external_data
        )

    def for_source(self, opsets: Mapping[str, int]) -> Recipe:
        """The concrete recipe for a source of these opsets (``{"ai.onnx": 17}``): with
        a range, the source's own opset when it is in the range (nothing to convert),
        else the highest opset in the range that the installed onnx converts to."""
        if self.opset_range is None:
            return self
        low, high = self.opset_range
        own = opsets.get("ai.onnx", opsets.get(""))
        opset = None if own is not None and low <= own <= high else min(high, max_opset())
        return replace(self, opset=opset, opset_range=None)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"dtype": self.dtype, "format": self.format, "opset": self.opset}
        if self.external_data:  # absent otherwise: the keys of other recipes stay as they were
            body["external_data"] = True
        return body

    def file_key(self, path: str) -> str:
        """The canonical text naming one file of a form of several files (the split's
        ``model.onnx_data``): the recipe's key with the file's path."""
        body = self.to_json() | {"recipe_format": RECIPE_FORMAT, "file": path}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    def key(self) -> str:
        """The canonical text of the recipe (what provenance and look-ups compare)."""
        body = self.to_json() | {"recipe_format": RECIPE_FORMAT}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, raw: object) -> Recipe:
        """A recipe from a request's ``representation`` object (``bad_request`` for
        anything else); ``for`` and ``device`` pick defaults elsewhere (choice.py)."""
        if not isinstance(raw, Mapping):
            raise HostError("bad_request", "representation must be an object")
        dtype = raw.get("dtype", "fp32")
        if dtype not in DTYPES:
            raise HostError(
                "bad_request", f"representation.dtype must be one of {', '.join(DTYPES)}"
            )
        form = raw.get("format", "onnx")
        if form not in FORMATS:
            raise HostError(
                "bad_request", f"representation.format must be one of {', '.join(FORMATS)}"
            )
        split = raw.get("external_data", False)
        if not isinstance(split, bool) or (split and form != "onnx"):
            raise HostError(
                "bad_request", "representation.external_data must be true or false (onnx only)"
            )
        return cls(str(dtype), str(form), _opset(raw.get("opset")), external_data=split)

    @classmethod
    def requested(cls, raw: object) -> Recipe:
        """The recipe for a request's ``representation`` option ``{dtype, format, opset,
        for, device}``, where ``for`` and ``device`` pick what the others leave open
        (choice.py, which refuses any other shape with ``bad_request``)."""
        target = from_wire(raw)
        if target.format not in FORMATS:
            raise HostError(
                "bad_request",
                f"representation.format {target.format} cannot be derived yet; ask for onnx",
                field="representation.format",
            )
        recipe = cls.parse(
            {
                "dtype": target.dtype,
                "format": target.format,
                "opset": target.opset,
                "external_data": target.external_data,
            }
        )
        return replace(recipe, opset_range=target.opset_range)


def _opset(raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not MIN_OPSET <= raw <= max_opset():
        raise HostError(
            "bad_request",
            f"representation.opset must be a whole number from {MIN_OPSET} to {max_opset()}",
        )
    return raw
