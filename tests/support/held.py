"""Which files a store keeps on disk, in either layout: whole files under ``blobs/``, or
recipes whose segments are all on disk. Tests ask the store this rather than look at
``blobs/`` themselves, so they hold with ``WEBMODELS_STORE_SEGMENTS=1`` too."""

from __future__ import annotations

from pathlib import Path

from webmodels.digest import Digest
from webmodels.store.store import Store


def holds(store: Store, digest: Digest) -> bool:
    """The file's bytes are on disk (whole, or every segment of its recipe)."""
    if store.files.exists(digest):
        return True
    recipe = store.recipe_of(digest)
    return recipe is not None and all(store.segmented.store.has(s) for s in recipe.segments)


def on_disk(store: Store, digest: Digest) -> list[Path]:
    """The files that keep the file's bytes: its whole file, or the files holding its
    segments (their own files, or packs), each once."""
    if store.files.exists(digest):
        return [store.files.path_of(digest)]
    recipe = store.recipe_of(digest)
    segments = recipe.segments if recipe is not None else ()
    return list(dict.fromkeys(store.segmented.store.locate(s)[0] for s in segments))


def held(store: Store) -> set[Digest]:
    """Every file whose bytes are on disk."""
    whole = {digest for digest, _ in store.files.iter_blobs()}
    rows = store.index.query("SELECT sha256 FROM recipes")
    kept = {Digest(str(row[0])) for row in rows}
    return whole | {digest for digest in kept if holds(store, digest)}


def held_in(home: Path) -> set[str]:
    """`held` of the store under a host's home folder, as hex digests."""
    with Store(home / "store-v2") as store:
        return {digest.hex for digest in held(store)}


def layout_overhead(store: Store) -> int:
    """Bytes the layout adds to the files' own in the store's physical bytes: each
    recipe's length less the inline bytes it holds (0 for files stored whole)."""
    total = 0
    for (sha256,) in store.index.query("SELECT sha256 FROM recipes"):
        digest = Digest(str(sha256))
        recipe = store.recipe_of(digest)
        row = store.index.query(
            "SELECT LENGTH(recipe) FROM recipes WHERE sha256 = ?", (digest.hex,)
        )
        if recipe is not None and row:
            total += int(row[0][0]) - (recipe.size - sum(s.size for s in recipe.segments))
    return total


def read_held(home: Path, sha256: str) -> bytes:
    """The bytes the store under a host's home folder keeps for ``sha256`` (either
    layout); KeyError when it keeps none."""
    with Store(home / "store-v2") as store:
        digest = Digest(sha256)
        record = store.get(digest)
        if record is None or not holds(store, digest):
            raise KeyError(sha256)
        return store.read(digest, 0, record.size)[0]
