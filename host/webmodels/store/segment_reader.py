"""A stored file as a read-only byte stream, whichever layout keeps it.

Senders that take a file object (an OCI push's upload, streamed by ``requests``) read
a file kept as segments straight from its segment files and inline parts, in order,
without a view (a copy of the whole file under ``views/``). A file kept whole, or a
pre-installed one, is opened where it lies.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import BinaryIO

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.store.segments import Inline, Recipe, SegmentStore
from webmodels.store.segments.reconstruct import SegmentMissing, open_segment
from webmodels.store.store import Store


class RecipeReader(io.RawIOBase):
    """The bytes of ``recipe`` read part by part; ``len()`` is the file's size (so an
    HTTP client sends a ``Content-Length``, not a chunked body). A segment that is
    gone or short ends the read with `SegmentMissing` (an OSError)."""

    def __init__(self, segments: SegmentStore, recipe: Recipe) -> None:
        super().__init__()
        self._segments = segments
        self._size = recipe.size
        self._parts: Iterator[memoryview | _Slice] = self._sources(recipe)
        self._current: memoryview | _Slice | None = None
        self._position = 0

    def __len__(self) -> int:
        return self._size

    def tell(self) -> int:
        """Bytes read so far (``requests`` sizes a body as its length less this)."""
        return self._position

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        out = memoryview(buffer).cast("B")
        while True:
            if self._current is None:
                self._current = next(self._parts, None)
                if self._current is None:
                    return 0
            got = self._fill(self._current, out)
            if got:
                self._position += got
                return got
            self._drop_current()

    def close(self) -> None:
        self._drop_current()
        self._parts = iter(())
        super().close()

    def _fill(self, source: memoryview | _Slice, out: memoryview) -> int:
        if isinstance(source, memoryview):
            count = min(len(source), len(out))
            out[:count] = source[:count]
            self._current = source[count:]
            return count
        return source.readinto(out)

    def _drop_current(self) -> None:
        if self._current is not None and not isinstance(self._current, memoryview):
            self._current.close()
        self._current = None

    def _sources(self, recipe: Recipe) -> Iterator[memoryview | _Slice]:
        for part in recipe.parts:
            if isinstance(part, Inline):
                yield memoryview(part.data)
                continue
            fh, start = open_segment(self._segments, part)
            yield _Slice(fh, start, part.size)


class _Slice:
    """One segment's bytes in the file holding them (its own file, or a pack)."""

    def __init__(self, fh: io.FileIO, start: int, size: int) -> None:
        self._fh, self._next, self._end = fh, start, start + size

    def readinto(self, out: memoryview) -> int:
        with out[: self._end - self._next] as into:
            got = os.preadv(self._fh.fileno(), [into], self._next) if len(into) else 0
        if not got and self._next < self._end:
            raise SegmentMissing("a segment shrank while it was read")
        self._next += got
        return got

    def close(self) -> None:
        self._fh.close()


def open_stored(store: Store, digest: Digest) -> tuple[io.RawIOBase | BinaryIO, int]:
    """A reader of the stored file and its size: its segments where it is kept as
    segments, else its file (a whole blob, a pre-installed file)."""
    recipe = store.servable_recipe(digest)
    if recipe is not None:
        return RecipeReader(store.segmented.store, recipe), recipe.size
    location = store.locate(digest)
    try:
        return location.path.open("rb"), location.size
    except FileNotFoundError:  # converted to segments meanwhile: read those
        recipe = store.servable_recipe(digest)
        if recipe is None:
            raise HostError("not_found", f"model {digest.hex} is gone") from None
        return RecipeReader(store.segmented.store, recipe), recipe.size
