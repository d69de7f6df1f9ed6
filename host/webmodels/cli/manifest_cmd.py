"""How ``ls`` and ``rm`` treat models made of several files (manifests/removal.py):
``ls`` shows each manifest as one model with its files under it; ``rm`` takes a
manifest's name (``NAME`` or ``NAME@VERSION``) or hash, and refuses to remove a file a
manifest still names unless ``--force``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webmodels.cli.output import human_bytes
from webmodels.digest import Digest
from webmodels.manifests.removal import release_file, remove_manifest
from webmodels.store import Store
from webmodels.store.manifests import (
    StoredManifest,
    find_named_manifest,
    list_manifests,
    load_manifest,
)
from webmodels.store.records import ModelRecord

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Listing:
    """``ls``'s models: manifests, and the files no manifest names."""

    manifests: list[StoredManifest]
    files: list[ModelRecord]
    members: dict[Digest, ModelRecord]


def listing(store: Store, records: list[ModelRecord]) -> Listing:
    manifests = list_manifests(store.index)
    named = {e.digest for m in manifests for e in m.manifest.entries}
    members = {r.digest: r for r in records if r.digest in named}
    return Listing(manifests, [r for r in records if r.digest not in named], members)


def listing_json(found: Listing) -> list[dict[str, Any]]:
    models = [_manifest_json(m, found.members) for m in found.manifests]
    return models + [{"kind": "file", **r.manage_info()} for r in found.files]


def _manifest_json(stored: StoredManifest, members: dict[Digest, ModelRecord]) -> dict[str, Any]:
    files = []
    for entry in stored.manifest.entries:
        record = members.get(entry.digest)
        info = record.manage_info() if record is not None else {"stored": False}
        files.append({**info, **entry.to_json()})
    return {
        "kind": "manifest",
        "sha256": stored.manifest.digest.hex,
        "name": stored.name,
        "version": stored.version,
        "format": "manifest",
        "size": stored.manifest.size,
        "files": files,
    }


def manifest_rows(found: Listing) -> list[tuple[object, ...]]:
    """Table rows: a manifest's own row, then one indented row per file."""
    rows: list[tuple[object, ...]] = []
    for stored in found.manifests:
        manifest = stored.manifest
        rows.append(
            (
                manifest.digest.short,
                stored.name or "-",
                stored.version or "-",
                f"{len(manifest.entries)} files",
                human_bytes(manifest.size),
                "manifest",
                "",
                "",
            )
        )
        for entry in manifest.entries:
            record = found.members.get(entry.digest)
            rows.append(
                (
                    f"  {entry.digest.short}",
                    f"  {entry.path}",
                    "",
                    entry.role,
                    human_bytes(entry.size),
                    "missing" if record is None else record.source,
                    "yes" if record is not None and record.pinned else "",
                    len(record.sites) if record is not None else "",
                )
            )
    return rows


def find_manifest_arg(store: Store, text: str) -> StoredManifest | None:
    """The manifest ``text`` names (its hash, 6+ hex digits of it, a name, or
    ``name@version``), or None when it names none."""
    value = text.lower().removeprefix("sha256:")
    if len(value) >= 6 and set(value) <= _HEX:
        hits = [m for m in list_manifests(store.index) if m.manifest.digest.hex.startswith(value)]
        return hits[0] if len(hits) == 1 else None
    name, _, version = text.rpartition("@") if "@" in text[1:] else (text, "", "")
    digest = find_named_manifest(store.index, name, version or None)
    if digest is None and version:
        digest = find_named_manifest(store.index, text, None)  # a name holding "@"
    manifest = load_manifest(store.index, digest) if digest is not None else None
    if manifest is None:
        return None
    return next((m for m in list_manifests(store.index) if m.manifest == manifest), None)


def remove_manifests(store: Store, manifests: list[StoredManifest], *, force: bool) -> int:
    return sum(remove_manifest(store, m, force=force).freed_bytes for m in manifests)


def release_files(store: Store, records: list[ModelRecord], *, force: bool) -> None:
    """Refuse (before anything is removed) while a manifest names one of ``records``."""
    if not force:
        for record in records:
            release_file(store, record.digest, force=False)
    for record in records:
        release_file(store, record.digest, force=force)
