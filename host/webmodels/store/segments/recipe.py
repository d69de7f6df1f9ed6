"""`Recipe`: the ordered parts that rebuild one file, and its on-disk encoding.

Encoding (``recipe-v1``, msgpack): ``[1, size, parts]`` where each part is either
``[digest, length]`` (a segment: 32 raw SHA-256 bytes and its length) or a byte string
(inline bytes). Decoding checks everything a reader later relies on: the version,
32-byte digests, positive lengths, inline parts of at most `INLINE_MAX` bytes, and
parts that add up to ``size``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import msgpack

from webmodels.digest import Digest

RECIPE_VERSION = 1
INLINE_MAX = 4096  # bytes; a run this small costs more as a file than in the recipe
MAX_PARTS = 1 << 22  # 4M parts: a 1 TB file in 256 KiB chunks
_CACHED_MAX = 64 << 10  # encoded bytes (about 1,500 parts) of a recipe kept decoded


class RecipeInvalid(ValueError):
    """The bytes are not a well-formed recipe."""


@dataclass(frozen=True, slots=True)
class Segment:
    digest: Digest
    size: int


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
        [bytes.fromhex(part.digest.hex), part.size] if isinstance(part, Segment) else part.data
        for part in recipe.parts
    ]
    packed: bytes = msgpack.packb([RECIPE_VERSION, recipe.size, parts], use_bin_type=True)
    return packed


def decode_recipe(data: bytes) -> Recipe:
    """The recipe encoded in ``data``; `RecipeInvalid` if it is not one. Recipes of
    up to `_CACHED_MAX` encoded bytes are kept decoded (a recipe is immutable, and
    every read of a file decodes its recipe: hundreds of parts for a small model)."""
    if len(data) > _CACHED_MAX:
        return _decode(data)
    return _decode_cached(bytes(data))


@functools.lru_cache(maxsize=64)
def _decode_cached(data: bytes) -> Recipe:
    return _decode(data)


def _decode(data: bytes) -> Recipe:
    try:
        value = msgpack.unpackb(data, raw=False, max_array_len=MAX_PARTS)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise RecipeInvalid(f"not a recipe: {exc}") from exc
    if not (isinstance(value, list) and len(value) == 3 and value[0] == RECIPE_VERSION):
        raise RecipeInvalid("not a recipe of version 1")
    size, raw_parts = value[1], value[2]
    if not isinstance(size, int) or not isinstance(raw_parts, list):
        raise RecipeInvalid("a recipe's size or parts have the wrong type")
    recipe = Recipe(tuple(_part(raw) for raw in raw_parts))
    if recipe.size != size:
        raise RecipeInvalid(f"parts add up to {recipe.size} bytes, not {size}")
    return recipe


def _part(raw: object) -> Part:
    if isinstance(raw, bytes):
        if not 0 < len(raw) <= INLINE_MAX:
            raise RecipeInvalid(f"an inline part of {len(raw)} bytes")
        return Inline(raw)
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
