"""A catalog document: parse, verify and sign. Pure: bytes and keys in, values out.

A catalog is a signed envelope (`webmodels.signing`) of format ``webmodels-catalog-v1``
whose payload is::

    {"catalog": "example",                      # its name: [a-z0-9][a-z0-9._-]*
     "version": 3, "expires": "2027-11-29T00:00:00Z",
     "models": [{"name": "pub/model", "version": "1.4.0",
                 "sha256": "<hex>", "size": 123, "urls": ["https://..."],
                 "format": "onnx", "task": "image-classification", "license": "MIT",
                 "inputs": [{"name": "x", "type": "float32", "dims": [1, "n"]}],
                 "outputs": [...],
                 "equivalents": ["pub/model-int8@1.4.0"]}]}

An entry may declare other forms of its model that its publisher made
(docs/representations.md): ``"representations": [{"dtype": "fp16", "format":
"onnx", "opset": null, "sha256": "<hex>", "size": 123, "urls": ["https://..."]}]``,
each with its own hash, size and URLs; a load asking for that form downloads it
(verified by hash) instead of the host deriving one.

A model of several files lists them instead of ``sha256``/``size``/``urls``:
``"files": [{"path": "onnx/model.onnx", "url": "https://...", "sha256": "<hex>",
"size": 123, "role": "graph"}, ...]`` (docs/catalogs.md); the entry's hash is then
its model manifest's (manifests/values.py) and its size the files' total. Every path
is checked as a manifest path (hostile input), before the catalog is accepted.

Each catalog is trusted with its own key (`webmodels catalog add FILE --key KEY`), so
one publisher's key cannot vouch for another's names. Declared input/output
signatures are descriptions only: substitution checks the metadata read from the
model itself (naming/resolve.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from webmodels.catalogs.forms import DeclaredForm, parse_forms
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.manifests.values import MAX_ENTRIES, ROLES, Entry, build_manifest, check_path
from webmodels.naming.versions import ModelName, Version, VersionError
from webmodels.oci.reference import is_oci, parse_reference
from webmodels.signing import (
    check_signature,
    iso,
    load_json_object,
    open_envelope,
    parse_time,
    refusal,
    seal,
)
from webmodels.store.metadata import ValueInfo
from webmodels.urls import is_http

FORMAT = "webmodels-catalog-v1"
WHAT = "catalog"
MAX_CATALOG_BYTES = 16 << 20  # STYLE habit 7: bound what we parse
MAX_MODELS = 20_000
MAX_URLS = 8
MAX_EQUIVALENTS = 16
MAX_VALUES = 256  # inputs or outputs declared for one model
_CATALOG_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """`name@exact-version`: how an entry names its equivalents."""

    name: ModelName
    version: Version

    @classmethod
    def parse(cls, text: object) -> ModelRef:
        if not isinstance(text, str) or "@" not in text:
            raise ValueError("an equivalent must be 'publisher/model@version'")
        name, _, version = text.partition("@")
        return cls(ModelName.parse(name), Version.parse(version))

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class CatalogFile:
    """One file of a multi-file catalog entry."""

    path: str
    url: str
    digest: Digest
    size: int
    role: str

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "url": self.url,
            "sha256": self.digest.hex,
            "size": self.size,
            "role": self.role,
        }


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    name: ModelName
    version: Version
    digest: Digest
    size: int
    urls: tuple[str, ...]
    format: str
    task: str | None
    license: str | None
    inputs: tuple[ValueInfo, ...] | None  # None: not declared
    outputs: tuple[ValueInfo, ...] | None
    equivalents: tuple[ModelRef, ...]
    files: tuple[CatalogFile, ...] = ()  # a model of several files; digest: its manifest's
    representations: tuple[DeclaredForm, ...] = ()  # other forms its publisher made

    def to_json(self) -> dict[str, Any]:
        files = {"files": [f.to_json() for f in self.files]} if self.files else {}
        if self.representations:
            files["representations"] = [form.to_json() for form in self.representations]
        return {
            **files,
            "name": str(self.name),
            "version": str(self.version),
            "sha256": self.digest.hex,
            "size": self.size,
            "urls": list(self.urls),
            "format": self.format,
            "task": self.task,
            "license": self.license,
            "inputs": None if self.inputs is None else [v.to_wire() for v in self.inputs],
            "outputs": None if self.outputs is None else [v.to_wire() for v in self.outputs],
            "equivalents": [str(e) for e in self.equivalents],
        }


@dataclass(frozen=True, slots=True)
class Catalog:
    """A catalog whose signature checked out (or that this host accepted before)."""

    name: str
    version: int
    expires: datetime
    entries: tuple[CatalogEntry, ...]
    key_id: str
    payload: bytes  # the signed bytes, kept to compare catalogs of equal version
    document: bytes  # the whole envelope, as stored

    def expired(self, now: datetime) -> bool:
        return now >= self.expires

    def summary(self, now: datetime) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "expires": iso(self.expires),
            "expired": self.expired(now),
            "key_id": self.key_id,
            "models": len(self.entries),
        }


def sign_catalog(payload: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """The envelope for `payload` (refused unless it is a valid catalog)."""
    parse_payload(payload)
    return seal(payload, private_key, format=FORMAT)


def verify_catalog(document: bytes, key: Ed25519PublicKey, *, now: datetime) -> Catalog:
    """The catalog in `document` if `key` signed it and it has not expired."""
    envelope = open_envelope(document, format=FORMAT, max_bytes=MAX_CATALOG_BYTES, what=WHAT)
    check_signature(envelope, [key], what=WHAT)
    catalog = _build(envelope.payload, envelope.key_id, document)
    if catalog.expired(now):
        raise refusal(WHAT, f"{catalog.name} expired on {iso(catalog.expires)}; get a newer one")
    return catalog


def read_catalog(document: bytes) -> Catalog:
    """A catalog this host already accepted (from its index): parsed, not re-verified."""
    envelope = open_envelope(document, format=FORMAT, max_bytes=MAX_CATALOG_BYTES, what=WHAT)
    return _build(envelope.payload, envelope.key_id, document)


def check_succession(new: Catalog, last: Catalog | None) -> None:
    """Rollback protection, per catalog: never an older version, nor a version swapped."""
    if last is None:
        return
    if new.version < last.version:
        raise refusal(
            WHAT, f"{new.name} version {new.version} is older than the current {last.version}"
        )
    if new.version == last.version and new.payload != last.payload:
        raise refusal(WHAT, f"{new.name} version {new.version} is installed with other contents")


def _build(payload: bytes, key_id: str, document: bytes) -> Catalog:
    name, version, expires, entries = parse_payload(payload)
    return Catalog(name, version, expires, entries, key_id, payload, document)


def parse_payload(payload: bytes) -> tuple[str, int, datetime, tuple[CatalogEntry, ...]]:
    data = load_json_object(payload, what=WHAT)
    name = data.get("catalog")
    if not isinstance(name, str) or not _CATALOG_NAME.fullmatch(name):
        raise refusal(WHAT, "catalog must be its name: [a-z0-9][a-z0-9._-]*, at most 64")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise refusal(WHAT, "version must be a positive integer")
    models = data.get("models")
    if not isinstance(models, list) or len(models) > MAX_MODELS:
        raise refusal(WHAT, f"models must be a list of at most {MAX_MODELS} entries")
    entries = tuple(_entry(m, n) for n, m in enumerate(models))
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        key = (str(entry.name), str(entry.version))
        if key in seen:
            raise refusal(WHAT, f"{key[0]}@{key[1]} is listed twice")
        seen.add(key)
    return name, version, parse_time(data.get("expires"), what=WHAT), entries


def _entry(raw: object, n: int) -> CatalogEntry:
    if not isinstance(raw, Mapping):
        raise refusal(WHAT, f"models[{n}] must be an object")
    name_text, version_text = raw.get("name"), raw.get("version")
    if not isinstance(name_text, str) or not isinstance(version_text, str):
        raise refusal(WHAT, f"models[{n}] needs a name and a version (strings)")
    try:
        name, version = ModelName.parse(name_text), Version.parse(version_text)
        equivalents = _list(raw.get("equivalents", []), MAX_EQUIVALENTS, "equivalents")
        refs = tuple(ModelRef.parse(e) for e in equivalents)
    except (VersionError, ValueError, TypeError) as exc:
        raise refusal(WHAT, f"models[{n}]: {exc}") from exc
    where = f"{name}@{version}"
    files = _files(raw["files"], where) if "files" in raw else ()
    size = raw.get("size", sum(f.size for f in files) if files else None)
    if files and (raw.get("urls") or size != sum(f.size for f in files)):
        raise refusal(WHAT, f"{where}: with files, no urls, and size is the files' total")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise refusal(WHAT, f"{where} needs a size in bytes")
    digest = _digest(raw.get("sha256"), where, files)
    return CatalogEntry(
        name=name,
        version=version,
        digest=digest,
        size=size,
        urls=_urls(raw.get("urls", []), where),
        format=_text(raw.get("format", "onnx"), where, "format") or "onnx",
        task=_text(raw.get("task"), where, "task"),
        license=_text(raw.get("license"), where, "license"),
        inputs=_values(raw.get("inputs"), where, "inputs"),
        outputs=_values(raw.get("outputs"), where, "outputs"),
        equivalents=refs,
        files=files,
        representations=parse_forms(raw.get("representations", []), where, files, _urls),
    )


def _digest(value: object, where: str, files: tuple[CatalogFile, ...]) -> Digest:
    """The entry's hash: its file's, or for a multi-file entry its manifest's (a
    ``sha256`` given beside ``files`` must be that)."""
    if files:
        entries = (Entry(f.path, f.digest, f.size, f.role) for f in files)
        try:
            digest = build_manifest(entries, field="files").digest
        except HostError as exc:
            raise refusal(WHAT, f"{where}: {exc.message}") from exc
        if value is not None and value != digest.hex:
            raise refusal(WHAT, f"{where}: sha256 is not the hash of its files' manifest")
        return digest
    try:
        return Digest.parse(value)
    except HostError as exc:
        raise refusal(WHAT, f"{where} has no valid sha256") from exc


def _files(value: object, where: str) -> tuple[CatalogFile, ...]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_ENTRIES:
        raise refusal(WHAT, f"{where}: files must be a list of 1 to {MAX_ENTRIES} files")
    return tuple(_file(raw, where) for raw in value)


def _file(raw: object, where: str) -> CatalogFile:
    if not isinstance(raw, Mapping):
        raise refusal(WHAT, f"{where}: every files entry must be an object")
    size, url, role = raw.get("size"), raw.get("url"), raw.get("role")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise refusal(WHAT, f"{where}: every file needs a size in bytes")
    if not is_http(url):
        raise refusal(WHAT, f"{where}: every file needs an http(s) url")
    if role not in ROLES:
        raise refusal(WHAT, f"{where}: a file's role must be one of {', '.join(ROLES)}")
    try:
        path = check_path(raw.get("path"), field="files")
        digest = Digest.parse(raw.get("sha256"))
    except HostError as exc:
        raise refusal(WHAT, f"{where}: {exc.message}") from exc
    assert isinstance(role, str) and isinstance(url, str)
    return CatalogFile(path, url, digest, size, role)


def _list(value: object, limit: int, field: str) -> Sequence[object]:
    if not isinstance(value, list) or len(value) > limit:
        raise ValueError(f"{field} must be a list of at most {limit}")
    return value


def _urls(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_URLS:
        raise refusal(WHAT, f"{where}: urls must be a list of at most {MAX_URLS}")
    for url in value:
        if isinstance(url, str) and is_oci(url):
            _oci_url(url, where)
        elif not is_http(url):
            raise refusal(WHAT, f"{where}: model URLs must be http(s) or oci:// URLs")
    return tuple(value)


def _oci_url(url: str, where: str) -> None:
    """``oci://REGISTRY/REPO@sha256:…`` or ``…:TAG``: the host fetches the entry's blob
    by its own sha256 from that repository (fetch/mirrors.py), so a bare repository,
    which names no artifact, is refused as a likely mistake."""
    try:
        reference = parse_reference(url)
    except HostError as exc:
        raise refusal(WHAT, f"{where}: {exc.message}") from exc
    if reference.tag is None and reference.digest is None:
        raise refusal(WHAT, f"{where}: {url} names no :TAG or @sha256: of an artifact")


def _text(value: object, where: str, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 256:
        raise refusal(WHAT, f"{where}: {field} must be a short string")
    return value


def _values(value: object, where: str, field: str) -> tuple[ValueInfo, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_VALUES:
        raise refusal(WHAT, f"{where}: {field} must be a list of at most {MAX_VALUES}")
    return tuple(_value(v, where, field) for v in value)


def _value(raw: object, where: str, field: str) -> ValueInfo:
    if not isinstance(raw, Mapping):
        raise refusal(WHAT, f"{where}: every {field} entry must be an object")
    name, kind, dims = raw.get("name"), raw.get("type"), raw.get("dims")
    if not isinstance(name, str) or not isinstance(kind, str):
        raise refusal(WHAT, f"{where}: every {field} entry needs a name and a type")
    if dims is None:
        return ValueInfo(name, kind, None)
    if not isinstance(dims, list) or len(dims) > 64:
        raise refusal(WHAT, f"{where}: {field} {name}: dims must be a list")
    for dim in dims:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int | str)):
            raise refusal(WHAT, f"{where}: {field} {name}: a dim is a number, a name or null")
    return ValueInfo(name, kind, tuple(dims))
