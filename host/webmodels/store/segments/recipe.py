"""`Recipe`: the ordered parts that rebuild one file, and its on-disk encoding.

Encoding (``recipe-v2``, msgpack): ``[2, size, parts, packed]`` where each part is
either ``[digest, length]`` (a segment: 32 raw SHA-256 bytes and its length) or an
integer ``n > 0`` (inline: the next ``n`` bytes of ``packed``, which is every inline
part's bytes in order, zlib-compressed). The inline parts are a file's graph
structure and headers, which no other file shares: compressed together they take a
third to a fortieth of their size (docs/segments.md).

``recipe-v1`` (``[1, size, parts]``, inline parts as byte strings of at most
`INLINE_MAX` bytes, uncompressed) is still read. Decoding checks everything a reader
later relies on: the version, 32-byte digests, positive lengths, inline bytes within
their limits (decompressed no further than the parts ask), and parts that add up to
``size``.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass, field
from typing import TypeGuard

import msgpack

from webmodels.digest import Digest

RECIPE_VERSION = 2
INLINE_MAX = 4096  # bytes; a run this small costs more as a file than in the recipe
INLINE_TOTAL_MAX = 16 << 20
"""The most inline bytes one recipe holds (decompressed): a container's graph
structure up to this stays in its recipe; `split` cuts the rest into segments."""
MAX_PARTS = 1 << 22  # 4M parts: a 1 TB file in 256 KiB chunks
_CACHED_MAX = 1 << 20  # encoded bytes of a recipe kept decoded (the 21 MB recognizer: 140 KB)
_CACHED_BYTES = 64 << 20  # memory of all recipes kept decoded (see `_cost`)
_CACHED_COUNT = 64
_LEVEL = 1
"""zlib's fastest level: on the corpus of docs/segments.md 5 % larger than level 6
(2.28 MB against 2.17 MB of 5.0 MB), in 60 % of its time (~100 MB/s), which every
import pays."""


class RecipeInvalid(ValueError):
    """The bytes are not a well-formed recipe."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A segment a recipe names: its SHA-256 and length. ``pack`` and ``offset`` say
    where its bytes are (`SegmentStore.locate`): in the pack file of that name at that
    offset, or (``pack`` None) in the segment's own file. They are not part of the
    recipe's encoding nor of equality: the index keeps them (``segment_refs``) and
    fills them in when it hands out a recipe (store/segmented.py)."""

    digest: Digest
    size: int
    pack: str | None = field(default=None, compare=False)
    offset: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Inline:
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


Part = Segment | Inline


@dataclass(frozen=True, slots=True)
class Recipe:
    parts: tuple[Part, ...]

    @property
    def size(self) -> int:
        """Logical bytes: the size of the file this recipe rebuilds."""
        return sum(part.size for part in self.parts)

    @property
    def segments(self) -> tuple[Segment, ...]:
        return tuple(part for part in self.parts if isinstance(part, Segment))

    @property
    def inline_bytes(self) -> int:
        return sum(part.size for part in self.parts if isinstance(part, Inline))


def encode_recipe(recipe: Recipe) -> bytes:
    parts: list[object] = [
        [bytes.fromhex(part.digest.hex), part.size] if isinstance(part, Segment) else part.size
        for part in recipe.parts
    ]
    inline = b"".join(part.data for part in recipe.parts if isinstance(part, Inline))
    compressed = zlib.compress(inline, _LEVEL) if inline else b""
    packed: bytes = msgpack.packb(
        [RECIPE_VERSION, recipe.size, parts, compressed], use_bin_type=True
    )
    return packed


def decode_recipe(data: bytes) -> Recipe:
    """The recipe encoded in ``data``; `RecipeInvalid` if it is not one. Recipes of
    up to `_CACHED_MAX` encoded bytes are kept decoded (a recipe is immutable, and
    every read of a file decodes its recipe: hundreds of parts for a small model)."""
    if len(data) > _CACHED_MAX:
        return _decode(data)
    key = bytes(data)
    with _cache_lock:
        recipe = _decoded.pop(key, None)
        if recipe is not None:
            _decoded[key] = recipe  # the most recently used last
            return recipe
    recipe = _decode(key)
    with _cache_lock:
        _remember(key, recipe)
    return recipe


def _remember(key: bytes, recipe: Recipe) -> None:
    """Keep ``recipe`` decoded, dropping the least recently used ones while more than
    `_CACHED_COUNT` recipes or `_CACHED_BYTES` bytes (a few compressed bytes may
    inflate to many) would be kept. Holds `_cache_lock`."""
    global _cached_bytes
    cost = _cost(key, recipe)
    if key in _decoded or cost > _CACHED_BYTES:
        return  # another thread decoded it too, or it is too large to keep
    while _decoded and (len(_decoded) >= _CACHED_COUNT or _cached_bytes + cost > _CACHED_BYTES):
        old_key, old = next(iter(_decoded.items()))
        del _decoded[old_key]
        _cached_bytes -= _cost(old_key, old)
    _decoded[key] = recipe
    _cached_bytes += cost


def _cost(key: bytes, recipe: Recipe) -> int:
    """Memory a kept recipe takes, about: its key, a part decoded takes some 6 times
    its ~40 encoded bytes (objects, hex digest), and the inflated inline bytes."""
    return 8 * len(key) + recipe.inline_bytes


_decoded: dict[bytes, Recipe] = {}  # least recently used first
_cached_bytes = 0
_cache_lock = threading.Lock()


def _decode(data: bytes) -> Recipe:
    try:
        value = msgpack.unpackb(data, raw=False, max_array_len=MAX_PARTS)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise RecipeInvalid(f"not a recipe: {exc}") from exc
    if isinstance(value, list) and len(value) == 3 and value[0] == 1:
        size, raw_parts = value[1], value[2]
        if not isinstance(size, int) or not isinstance(raw_parts, list):
            raise RecipeInvalid("a recipe's size or parts have the wrong type")
        recipe = Recipe(tuple(_part(raw) for raw in raw_parts))
    elif isinstance(value, list) and len(value) == 4 and value[0] == RECIPE_VERSION:
        size, raw_parts, packed = value[1], value[2], value[3]
        if not (isinstance(size, int) and isinstance(raw_parts, list)):
            raise RecipeInvalid("a recipe's size or parts have the wrong type")
        if not isinstance(packed, bytes):
            raise RecipeInvalid("a recipe's inline bytes have the wrong type")
        recipe = Recipe(_parts_v2(raw_parts, packed))
    else:
        raise RecipeInvalid("not a recipe of version 1 or 2")
    if recipe.size != size:
        raise RecipeInvalid(f"parts add up to {recipe.size} bytes, not {size}")
    return recipe


def _part(raw: object) -> Part:
    if isinstance(raw, bytes):
        if not 0 < len(raw) <= INLINE_MAX:
            raise RecipeInvalid(f"an inline part of {len(raw)} bytes")
        return Inline(raw)
    return _segment(raw)


def _segment(raw: object) -> Segment:
    if isinstance(raw, list) and len(raw) == 2:
        digest, length = raw
        if (
            isinstance(digest, bytes)
            and len(digest) == 32
            and isinstance(length, int)
            and length > 0
        ):
            return Segment(Digest(digest.hex()), length)
    raise RecipeInvalid("a part is neither inline bytes nor [digest, length]")


def _parts_v2(raw_parts: list[object], packed: bytes) -> tuple[Part, ...]:
    lengths = [raw for raw in raw_parts if _is_length(raw)]
    if any(n <= 0 for n in lengths) or sum(lengths) > INLINE_TOTAL_MAX:
        raise RecipeInvalid("inline parts of no bytes or past the limit")
    inline = _inflate(packed, sum(lengths))
    parts: list[Part] = []
    pos = 0
    for raw in raw_parts:
        if _is_length(raw):
            parts.append(Inline(inline[pos : pos + raw]))
            pos += raw
        else:
            parts.append(_segment(raw))
    return tuple(parts)


def _inflate(packed: bytes, expected: int) -> bytes:
    """Exactly ``expected`` bytes from ``packed``, never inflating past them."""
    if not packed:
        if expected:
            raise RecipeInvalid("inline parts without their bytes")
        return b""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(packed, expected + 1)
    except zlib.error as exc:
        raise RecipeInvalid(f"inline bytes that do not inflate: {exc}") from exc
    if len(data) != expected or not inflater.eof or inflater.unused_data:
        raise RecipeInvalid(f"inline bytes inflate to {len(data)} bytes, not {expected}")
    return data


def _is_length(raw: object) -> TypeGuard[int]:
    return isinstance(raw, int) and not isinstance(raw, bool)
