"""Which form of a model a page's runtime gets: pure, no I/O.

A page asks ``{dtype, format, opset, for, device, external_data}`` (all optional). What it names
explicitly wins; ``for`` (the runtime that will run the model) fills the rest from what
the page's device reports:

* ``"webgpu"`` → fp16 when the adapter has the ``shader-f16`` feature, else fp32
  (ONNX Runtime Web's WebGPU provider cannot run fp16 shaders without it);
* ``"webnn"`` → fp16 when the WebNN context's ``opSupportLimits()`` accepts
  ``float16`` tensors (GPUs and NPUs run half precision natively), else fp32;
* ``"wasm"`` → fp32. Not int8, although WASM runs int8 well: dynamic quantization
  changes the outputs (by up to about 1e-2), and a page that did not ask for that must
  not get it silently; fp32 is also the form already stored, so nothing is derived or
  kept. A page that wants the smaller form asks ``dtype: "int8"``;
* ``"host"`` (and no hint) → fp32: the host's native sessions run fp32 fastest on CPU.

``opset`` is a number (convert to exactly that opset) or a range, ``{min, max}`` or
``"17-21"`` (`Target.opset_range`): a source whose opset is in the range is taken as it
is, any other is converted to the highest opset in the range that the installed onnx
knows (recipes.py, ``Recipe.for_source``).

Everything comes from the page, so everything is checked and bounded here; a value
of the wrong shape is a ``bad_request`` whose ``field`` names it
(``representation.dtype``, ``representation.device.webgpu.features``, …). The device
report is used only for the two facts above and never stored: a GPU's feature list is
fingerprinting material (see PRIVACY.md).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from webmodels.errors import HostError

DTYPES = ("fp32", "fp16", "int8", "q4")
FORMATS = ("onnx", "ort")
RUNTIMES = ("webgpu", "webnn", "wasm", "host")
# ONNX Runtime runs the default domain from opset 7; above the installed onnx's newest
# opset no converter exists.
MIN_OPSET = 7


@functools.cache
def max_opset() -> int:
    """The installed onnx's newest opset. Asked when a recipe names an opset: importing
    onnx (and numpy) costs a host start about a second of CPU (docs/design.md)."""
    from onnx.defs import onnx_opset_version

    return int(onnx_opset_version())


def __getattr__(name: str) -> int:
    if name == "MAX_OPSET":  # the constant this was, for the CLI's help and the tests
        return max_opset()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


QUERY_KEYS = frozenset({"dtype", "format", "opset", "for", "external_data"})
DEVICE_KEYS = frozenset({"webgpu", "webnn"})
MAX_FEATURES = 64  # WebGPU names about 30 features today
MAX_DATA_TYPES = 16  # WebNN names 9 operand data types
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")  # "shader-f16", "float16", "int4"
OPSET_RANGE = re.compile(r"([0-9]{1,3})-([0-9]{1,3})\Z")  # "17-21"
RANGE_KEYS = frozenset({"min", "max"})
FIELD = "representation"


@dataclass(frozen=True)
class Target:
    """The form to hand out: ``opset`` None keeps the source's opset, unless
    ``opset_range`` (lowest, highest) asks for one in a range."""

    dtype: str
    format: str
    opset: int | None
    opset_range: tuple[int, int] | None = None
    # The graph in ``model.onnx`` and its tensors in ``model.onnx_data`` (a set of two
    # files, lossless); only for the ONNX format.
    external_data: bool = False


@dataclass(frozen=True)
class Device:
    """What the page's runtime can do, as far as the choice needs it."""

    webgpu_features: frozenset[str] = frozenset()
    webnn_data_types: frozenset[str] = frozenset()


def from_wire(representation: object) -> Target:
    """The target for a request's ``representation`` parameter as a page sends it
    (``{dtype, format, opset, for, device}``)."""
    fields = _object(representation, FIELD, QUERY_KEYS | {"device"})
    query = {key: value for key, value in fields.items() if key != "device"}
    return choose(query, fields.get("device"))


def explain(representation: object) -> str:
    """One log line for a request's ``representation``: what the device reported (only
    the facts the choice uses) and the target. Raises like `from_wire`."""
    target = from_wire(representation)
    fields = _object(representation, FIELD, QUERY_KEYS | {"device"})
    device = parse_device(fields.get("device"))
    raw = _object(fields.get("device") or {}, f"{FIELD}.device", DEVICE_KEYS)
    reported = []
    if "webgpu" in raw:
        reported.append(f"webgpu shader-f16 {_yes('shader-f16' in device.webgpu_features)}")
    if "webnn" in raw:
        reported.append(f"webnn float16 {_yes('float16' in device.webnn_data_types)}")
    opset = "source" if target.opset is None else str(target.opset)
    if target.opset_range is not None:
        opset = "{}-{}".format(*target.opset_range)
    return (
        f"for {fields.get('for') or 'host'}, device: {', '.join(reported) or 'nothing reported'}"
        f" -> {target.dtype} {target.format} opset {opset}"
    )


def choose(query: object, device: object = None) -> Target:
    """The form for `query` (``{dtype, format, opset, for}``) on `device`
    (``{webgpu: {features}, webnn: {data_types}}``, either may be absent)."""
    fields = _object(query, FIELD, QUERY_KEYS)
    reported = parse_device(device)  # checked even when an explicit dtype makes it moot
    runtime = _choice(fields, "for", RUNTIMES) or "host"
    dtype = _choice(fields, "dtype", DTYPES) or default_dtype(runtime, reported)
    opset = fields.get("opset")
    exact = None if isinstance(opset, dict | str) else _opset(opset)
    form = _choice(fields, "format", FORMATS) or "onnx"
    split = fields.get("external_data", False)
    if not isinstance(split, bool):
        raise _bad(f"{FIELD}.external_data", "true or false")
    if split and form != "onnx":
        raise _bad(f"{FIELD}.external_data", "false for the ort format (it has no external data)")
    return Target(
        dtype=dtype,
        format=form,
        opset=exact,
        opset_range=_opset_range(opset) if exact is None and opset is not None else None,
        external_data=split,
    )


def default_dtype(runtime: str, device: Device) -> str:
    """The dtype a runtime gets when the page names none."""
    if runtime == "webgpu" and "shader-f16" in device.webgpu_features:
        return "fp16"
    if runtime == "webnn" and "float16" in device.webnn_data_types:
        return "fp16"
    return "fp32"


def parse_device(raw: object) -> Device:
    """The page's device report, checked; None (not sent) is a device that reports
    nothing, so every runtime gets fp32."""
    if raw is None:
        return Device()
    field = f"{FIELD}.device"
    fields = _object(raw, field, DEVICE_KEYS)
    return Device(
        webgpu_features=_names(fields.get("webgpu"), f"{field}.webgpu", "features", MAX_FEATURES),
        webnn_data_types=_names(
            fields.get("webnn"), f"{field}.webnn", "data_types", MAX_DATA_TYPES
        ),
    )


def _names(raw: object, field: str, key: str, limit: int) -> frozenset[str]:
    """``{key: [name, …]}`` (at most `limit` short lowercase names), or None."""
    if raw is None:
        return frozenset()
    names = _object(raw, field, frozenset({key})).get(key, [])
    field = f"{field}.{key}"
    if not isinstance(names, list) or len(names) > limit:
        raise _bad(field, f"a list of at most {limit} names")
    if not all(isinstance(name, str) and NAME.match(name) for name in names):
        raise _bad(field, "lowercase names of at most 64 characters")
    return frozenset(names)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _object(raw: object, field: str, keys: frozenset[str]) -> Mapping[str, object]:
    if not isinstance(raw, dict):
        raise _bad(field, "an object")
    unknown = sorted(str(key) for key in raw if key not in keys)
    if unknown:
        raise _bad(f"{field}.{unknown[0][:64]}", f"one of {', '.join(sorted(keys))}")
    return raw


def _choice(fields: Mapping[str, object], key: str, allowed: tuple[str, ...]) -> str | None:
    """The value of `key`, one of `allowed`, or None when absent."""
    value = fields.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise _bad(f"{FIELD}.{key}", f"one of {', '.join(allowed)}")
    return value


def _opset(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{FIELD}.opset", "an integer")
    if not MIN_OPSET <= value <= max_opset():
        raise _bad(f"{FIELD}.opset", f"between {MIN_OPSET} and {max_opset()}")
    return value


def _opset_range(value: object) -> tuple[int, int]:
    """``{min?, max?}`` or ``"LOW-HIGH"``: (lowest, highest), with at least one opset
    in it that a converter reaches (MIN_OPSET to the installed onnx's newest)."""
    field = f"{FIELD}.opset"
    if isinstance(value, str):
        matched = OPSET_RANGE.match(value)
        if matched is None:
            raise _bad(field, 'an integer, {min, max} or a range such as "17-21"')
        low, high = int(matched[1]), int(matched[2])
    else:
        bounds = _object(value, field, RANGE_KEYS)
        low, high = _bound(bounds, "min", MIN_OPSET), _bound(bounds, "max", max_opset())
    if not low <= high or high < MIN_OPSET or low > max_opset():
        raise _bad(field, f"a range, lowest first, with an opset from {MIN_OPSET} to {max_opset()}")
    return low, high


def _bound(bounds: Mapping[str, object], key: str, default: int) -> int:
    value = bounds.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 999:
        raise _bad(f"{FIELD}.opset.{key}", "an integer from 0 to 999")
    return value


def _bad(field: str, expected: str) -> HostError:
    return HostError("bad_request", f"{field} must be {expected}.", field=field)
