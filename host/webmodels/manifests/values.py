"""A manifest's value types and its validation as hostile input.

A manifest comes from a page, a catalog or a folder the user names, and its paths
become file names on disk (the runtime worker links each file under its path), so
every path is checked here once, at the boundary: relative, ``/``-separated, no ``.``
or ``..`` part, no backslash, drive letter or ``:`` (Windows alternate streams), no
control character, no empty part, no Windows device name, no part ending in a dot or
a space (Windows drops them, so two names would meet), and no two entries equal once
Unicode-normalised and case-folded (macOS and Windows folders fold case), nor one
entry a folder of another. Error code: ``bad_request`` with ``field`` naming the
parameter (page-safe), for every shape problem.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from webmodels.digest import Digest
from webmodels.errors import HostError

FORMAT = "webmodels-manifest/1"
# ``weights``: safetensors, GGUF or weight shards; ``index``: the file that maps tensors
# to those shards (``model.safetensors.index.json``, WebLLM's ``ndarray-cache.json``).
ROLES = ("graph", "external_data", "tokenizer", "config", "weights", "index", "other")
MAX_ENTRIES = 4096  # a Transformers.js folder has tens; WebLLM a few hundred shards
MAX_PATH_CHARS = 512
MAX_PART_CHARS = 255  # the usual file-system limit of one name
MAX_DEPTH = 16
MAX_SIZE = 1 << 50  # about a petabyte: past it a size is nonsense, not a model
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DEVICES = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
)


@dataclass(frozen=True, slots=True)
class Entry:
    path: str  # relative, "/"-separated, checked by `check_path`
    digest: Digest
    size: int
    role: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.digest.hex, "size": self.size, "role": self.role}


@dataclass(frozen=True, slots=True)
class Manifest:
    """Entries sorted by path; `digest` is the SHA-256 of `canonical`."""

    entries: tuple[Entry, ...]

    @property
    def canonical(self) -> bytes:
        document = {"format": FORMAT, "files": [e.to_json() for e in self.entries]}
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return text.encode("ascii")

    @property
    def digest(self) -> Digest:
        return Digest(hashlib.sha256(self.canonical).hexdigest())

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def graphs(self) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if e.role == "graph")

    def entry(self, path: str) -> Entry | None:
        return next((e for e in self.entries if e.path == path), None)

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.digest.hex, "size": self.size, **json.loads(self.canonical)}


def build_manifest(entries: Iterable[Entry], *, field: str = "files") -> Manifest:
    """A manifest of ``entries`` after every check of the module docstring."""
    items = list(entries)
    if not items:
        raise _bad(field, "names no file")
    if len(items) > MAX_ENTRIES:
        raise _bad(field, f"has more than {MAX_ENTRIES} files")
    seen: dict[str, str] = {}
    for entry in items:
        check_path(entry.path, field=field)
        if entry.role not in ROLES:
            raise _bad(field, f"gives {entry.path!r} the unknown role {entry.role!r}")
        if not 0 <= entry.size <= MAX_SIZE:
            raise _bad(field, f"gives {entry.path!r} an impossible size")
        folded = _fold(entry.path)
        if folded in seen:
            raise _bad(field, f"names {entry.path!r} and {seen[folded]!r}, the same file")
        seen[folded] = entry.path
    for folded, path in seen.items():
        parts = folded.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in seen:
                raise _bad(field, f"uses the file {seen[parent]!r} as the folder of {path!r}")
    return Manifest(tuple(sorted(items, key=lambda e: e.path)))


def check_path(path: object, *, field: str = "files") -> str:
    """``path`` if it is a safe relative file path (module docstring), else `bad_request`."""
    if not isinstance(path, str) or not path:
        raise _bad(field, "names a file with an empty or non-text path")
    if len(path) > MAX_PATH_CHARS:
        raise _bad(field, f"names a path longer than {MAX_PATH_CHARS} characters")
    if "\\" in path or ":" in path or _CONTROL.search(path):
        raise _bad(field, f"names {path!r}: no backslash, colon or control character")
    if path.startswith("/"):
        raise _bad(field, f"names the absolute path {path!r}; paths are relative")
    parts = path.split("/")
    if len(parts) > MAX_DEPTH:
        raise _bad(field, f"names {path!r}, more than {MAX_DEPTH} folders deep")
    for part in parts:
        if part in ("", ".", ".."):
            raise _bad(field, f"names {path!r}: no empty, '.' or '..' part")
        if len(part) > MAX_PART_CHARS or part[-1] in ". " or part[0] == " ":
            raise _bad(field, f"names {path!r}: a part is too long or ends in a dot or space")
        if part.split(".", 1)[0].casefold() in _DEVICES:
            raise _bad(field, f"names {path!r}: a Windows device name")
    return path


def parse_entries(value: object, *, field: str = "files") -> list[Entry]:
    """Entries from wire JSON: a list of ``{path, sha256, size, role}``."""
    if not isinstance(value, list):
        raise _bad(field, "must be a list of {path, sha256, size, role}")
    if len(value) > MAX_ENTRIES:
        raise _bad(field, f"has more than {MAX_ENTRIES} files")
    entries = []
    for item in value:
        if not isinstance(item, Mapping):
            raise _bad(field, "must be a list of {path, sha256, size, role}")
        size = item.get("size")
        if not isinstance(size, int) or isinstance(size, bool):
            raise _bad(field, "gives a file a size that is not an integer")
        digest = Digest.parse(item.get("sha256"), field=field)
        entries.append(
            Entry(check_path(item.get("path"), field=field), digest, size, str(item.get("role")))
        )
    return entries


def parse_manifest(value: object, *, field: str = "manifest") -> Manifest:
    """A manifest from its JSON document (``{format, files}``), fully checked."""
    if not isinstance(value, Mapping) or value.get("format") != FORMAT:
        raise _bad(field, f"must be a manifest document of format {FORMAT!r}")
    return build_manifest(parse_entries(value.get("files"), field=field), field=field)


def _fold(path: str) -> str:
    return unicodedata.normalize("NFKC", path).casefold()


def _bad(field: str, why: str) -> HostError:
    return HostError("bad_request", f"params.{field} {why}", field=field)
