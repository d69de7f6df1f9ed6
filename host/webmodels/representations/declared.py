"""Forms a trusted catalog declares (``representations`` in its entry,
catalogs/documents.py): found before the host derives one.

A load by name whose recipe a catalog entry of that name and version declares, or a
load by hash whose recipe an entry with that SHA-256 declares, gets the declared file,
downloaded like any catalog file and verified by its own hash, instead of a
derivation: its publisher made it, so the host neither converts nor checks it
numerically (the hash is the check, as for the model itself).

A declared form in ONNX Runtime's own format (``format: "ort"``) is a flatbuffer that
the store's sniffing takes for an opaque file: once held, its object row is given the
format its catalog declares (`record_format`), so a session over it loads it with the
ORT option, as a form the host made in that format. Only bytes whose SHA-256 a catalog
in force declares so are ever marked: a page cannot make a file of its own "ort".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from webmodels.catalogs import keeper
from webmodels.catalogs.documents import CatalogEntry
from webmodels.catalogs.forms import DeclaredForm
from webmodels.digest import Digest
from webmodels.naming.resolve import Candidate
from webmodels.representations.recipes import Recipe
from webmodels.store.index import Index
from webmodels.store.metadata import ModelMetadata
from webmodels.store.records import ModelRecord
from webmodels.store.store import Store

SOURCE = "catalog"  # what ``info.representation.source`` says of such a form


def declared(index: Index, given: Candidate, recipe: Recipe) -> DeclaredForm | None:
    """The form ``recipe`` asks of ``given`` that its catalog declares, if any."""
    if not given.source.startswith("catalog:"):
        return None
    name = given.source.removeprefix("catalog:")
    return _first(
        index,
        recipe,
        lambda catalog, entry: (
            catalog == name
            and (entry.name, entry.version, entry.digest)
            == (given.name, given.version, given.digest)
        ),
    )


def declared_for(index: Index, digest: Digest, recipe: Recipe) -> DeclaredForm | None:
    """The form ``recipe`` asks of the model ``digest`` that a catalog in force declares
    (for a load by hash: the first catalog whose entry has that SHA-256)."""
    return _first(index, recipe, lambda catalog, entry: entry.digest == digest)


def all_declared(index: Index) -> dict[Digest, tuple[Digest, DeclaredForm]]:
    """Every form the catalogs in force declare, by its own SHA-256: the model it is a
    form of and the declaration (first catalog wins), for `webmodels ls`."""
    found: dict[Digest, tuple[Digest, DeclaredForm]] = {}
    for catalog in keeper.in_force(index, datetime.now(UTC)):
        for entry in catalog.entries:
            for form in entry.representations:
                found.setdefault(form.digest, (entry.digest, form))
    return found


def _first(
    index: Index, recipe: Recipe, match: Callable[[str, CatalogEntry], bool]
) -> DeclaredForm | None:
    if recipe.identity:
        return None
    for catalog in keeper.in_force(index, datetime.now(UTC)):
        for entry in catalog.entries:
            if match(catalog.name, entry):
                form = next((f for f in entry.representations if fits(f, recipe)), None)
                if form is not None:
                    return form
    return None


def fits(form: DeclaredForm, recipe: Recipe) -> bool:
    """Whether a declared form is the one ``recipe`` asks; with an opset range, any
    declared opset in the range is taken as it is."""
    if recipe.opset_range is None:
        return form.recipe() == (recipe.dtype, recipe.format, recipe.opset)
    low, high = recipe.opset_range
    in_range = form.opset is not None and low <= form.opset <= high
    return (form.dtype, form.format) == (recipe.dtype, recipe.format) and in_range


def declared_format(index: Index, digest: Digest) -> str | None:
    """The format a catalog in force declares for the file ``digest`` as a form of one
    of its models; None when none declares it."""
    found = all_declared(index).get(digest)
    return None if found is None else found[1].format


def record_format(store: Store, record: ModelRecord) -> ModelRecord:
    """``record`` with the format its catalog declares, kept in its object row, when a
    catalog in force declares it as an ORT-format form and the store took it for an
    opaque file (an ONNX file stays ONNX); ``record`` itself otherwise. Its inputs
    and outputs are its model's when that is stored (no recipe changes them)."""
    if record.format in ("onnx", "ort"):
        return record
    found = all_declared(store.index).get(record.digest)
    if found is None or found[1].format != "ort":
        return record
    source = store.get(found[0])
    metadata = ModelMetadata(
        format="ort",
        inputs=source.metadata.inputs if source is not None else (),
        outputs=source.metadata.outputs if source is not None else (),
    )
    with store.index.write() as db:
        db.execute(
            "UPDATE objects SET format = 'ort', metadata = ? "
            "WHERE sha256 = ? AND format NOT IN ('onnx', 'ort')",
            (json.dumps(metadata.to_json()), record.digest.hex),
        )
    return store.get(record.digest) or record
