"""Forms a trusted catalog declares (``representations`` in its entry,
catalogs/documents.py): found before the host derives one.

A load by name whose recipe a catalog entry of that name and version declares gets the
declared file, downloaded like any catalog file and verified by its own hash, instead
of a derivation: its publisher made it, so the host neither converts nor checks it
numerically (the hash is the check, as for the model itself).
"""

from __future__ import annotations

from datetime import UTC, datetime

from webmodels.catalogs import keeper
from webmodels.catalogs.forms import DeclaredForm
from webmodels.naming.resolve import Candidate
from webmodels.representations.recipes import Recipe
from webmodels.store.index import Index

SOURCE = "catalog"  # what ``info.representation.source`` says of such a form


def declared(index: Index, given: Candidate, recipe: Recipe) -> DeclaredForm | None:
    """The form ``recipe`` asks of ``given`` that its catalog declares, if any."""
    if recipe.identity or not given.source.startswith("catalog:"):
        return None
    name = given.source.removeprefix("catalog:")
    wanted = (recipe.dtype, recipe.format, recipe.opset)
    for catalog in keeper.in_force(index, datetime.now(UTC)):
        if catalog.name != name:
            continue
        for entry in catalog.entries:
            if (entry.name, entry.version, entry.digest) == (
                given.name,
                given.version,
                given.digest,
            ):
                return next((f for f in entry.representations if f.recipe() == wanted), None)
    return None
