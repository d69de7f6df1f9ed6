"""Forms of a model that a catalog entry declares (``representations``): parsed and
checked as hostile input, like the rest of a catalog (catalogs/documents.py).

Each names a recipe (``dtype``, ``format``, ``opset``; never the model as it is) and
its own bytes (``sha256``, ``size``, ``urls``); a load asking for that form gets this
file instead of a derivation (representations/declared.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.representations.choice import DTYPES, FORMATS, MIN_OPSET
from webmodels.signing import refusal

WHAT = "catalog"
MAX_FORMS = 16  # representations declared for one model
MAX_OPSET = 1000  # a bound only: the host refuses an opset its onnx does not know later
_FORM_KEYS = frozenset({"dtype", "format", "opset", "sha256", "size", "urls"})


@dataclass(frozen=True, slots=True)
class DeclaredForm:
    """A form of an entry's model that its catalog declares: the recipe it answers
    (``dtype``, ``format``, ``opset``; never the model as it is) and its own bytes."""

    dtype: str
    format: str
    opset: int | None
    digest: Digest
    size: int
    urls: tuple[str, ...]

    def recipe(self) -> tuple[str, str, int | None]:
        return (self.dtype, self.format, self.opset)

    def to_json(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "format": self.format,
            "opset": self.opset,
            "sha256": self.digest.hex,
            "size": self.size,
            "urls": list(self.urls),
        }


Urls = Callable[[object, str], tuple[str, ...]]


def parse_forms(
    value: object, where: str, files: Sequence[object], urls: Urls
) -> tuple[DeclaredForm, ...]:
    """The entry's declared forms (``files``: the entry's files, beside which none may be
    declared; ``urls``: the catalog's own check of a list of URLs)."""
    if not isinstance(value, list) or len(value) > MAX_FORMS:
        raise refusal(WHAT, f"{where}: representations must be a list of at most {MAX_FORMS}")
    if value and files:
        raise refusal(WHAT, f"{where}: a model of several files declares no representations")
    forms = tuple(_form(raw, where, urls) for raw in value)
    if len({form.recipe() for form in forms}) != len(forms):
        raise refusal(WHAT, f"{where}: a representation is declared twice")
    return forms


def _form(raw: object, where: str, urls: Callable[[object, str], tuple[str, ...]]) -> DeclaredForm:
    """One declared form, checked like every other field of a catalog (hostile input)."""
    if not isinstance(raw, Mapping):
        raise refusal(WHAT, f"{where}: every representation must be an object")
    unknown = sorted(str(key)[:64] for key in raw if key not in _FORM_KEYS)
    if unknown:
        raise refusal(WHAT, f"{where}: a representation has an unknown field {unknown[0]!r}")
    dtype, form, opset = raw.get("dtype", "fp32"), raw.get("format", "onnx"), raw.get("opset")
    if dtype not in DTYPES or form not in FORMATS:
        raise refusal(
            WHAT,
            f"{where}: a representation's dtype is one of {', '.join(DTYPES)} and its "
            f"format one of {', '.join(FORMATS)}",
        )
    if opset is not None and (
        isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET
    ):
        raise refusal(WHAT, f"{where}: a representation's opset is a whole number from 7")
    if (dtype, form, opset) == ("fp32", "onnx", None):
        raise refusal(WHAT, f"{where}: a representation must differ from the model itself")
    size = raw.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise refusal(WHAT, f"{where}: every representation needs a size in bytes")
    try:
        digest = Digest.parse(raw.get("sha256"))
    except HostError as exc:
        raise refusal(WHAT, f"{where}: a representation has no valid sha256") from exc
    assert isinstance(dtype, str) and isinstance(form, str)
    return DeclaredForm(dtype, form, opset, digest, size, urls(raw.get("urls", []), where))
