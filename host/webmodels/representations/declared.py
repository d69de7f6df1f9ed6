"""Forms a trusted catalog declares (``representations`` in its entry,
catalogs/documents.py): found before the host derives one.

A load by name whose recipe a catalog entry of that name and version declares, or a
load by hash whose recipe an entry with that SHA-256 declares, gets the declared file,
downloaded like any catalog file and verified by its own hash, instead of a
derivation: its publisher made it, so the host neither converts nor checks it
numerically (the hash is the check, as for the model itself).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from webmodels.catalogs import keeper
from webmodels.catalogs.documents import CatalogEntry
from webmodels.catalogs.forms import DeclaredForm
from webmodels.digest import Digest
from webmodels.naming.resolve import Candidate
from webmodels.representations.recipes import Recipe
from webmodels.store.index import Index

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
