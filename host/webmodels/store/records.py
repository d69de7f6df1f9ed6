"""What the store returns: frozen records built from index rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmodels.digest import Digest
from webmodels.store.metadata import ModelMetadata

SOURCES = ("downloaded", "preinstalled", "imported")


@dataclass(frozen=True, slots=True)
class ModelRecord:
    digest: Digest
    size: int
    metadata: ModelMetadata
    name: str | None
    version: str | None
    source: str  # downloaded | preinstalled | imported | derived
    stored: bool  # a copy under blobs/ that is not quarantined
    preinstalled_path: Path | None
    quarantined: bool
    pinned: bool
    sites: tuple[str, ...]  # partition keys that obtained it
    created_at: float
    shared_with: tuple[str, ...] = ()  # top-level sites the user shared it with

    @property
    def format(self) -> str:
        return self.metadata.format

    @property
    def servable(self) -> bool:
        return self.stored or self.preinstalled_path is not None

    def info(self) -> dict[str, Any]:
        """The ModelInfo of PROTOCOL.md (what any caller that can see the model gets)."""
        meta = self.metadata.to_json()
        return {
            "sha256": self.digest.hex,
            "size": self.size,
            "format": self.format,
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "inputs": meta["inputs"],
            "outputs": meta["outputs"],
            "opsets": meta["opsets"],
            "ir_version": meta["ir_version"],
            "producer": meta["producer"],
            "substituted": False,
        }

    def manage_info(self) -> dict[str, Any]:
        """ModelInfo plus what only the user's own views (popup, CLI) may see."""
        return {
            **self.info(),
            "pinned": self.pinned,
            "stored": self.stored,
            "quarantined": self.quarantined,
            "preinstalled_path": str(self.preinstalled_path) if self.preinstalled_path else None,
            "sites": [_site_wire(key) for key in self.sites],
            "shared_with": list(self.shared_with),
            "created_at": self.created_at,
        }


def _site_wire(key: str) -> dict[str, str]:
    top, _, origin = key.partition(" ")
    return {"top_site": top, "origin": origin}


@dataclass(frozen=True, slots=True)
class Location:
    """Where to read a model's bytes from."""

    digest: Digest
    path: Path
    size: int
    preinstalled: bool


@dataclass(frozen=True, slots=True)
class ImportResult:
    model: ModelRecord
    deduplicated: bool  # the bytes were already stored; nothing new was written


@dataclass(frozen=True, slots=True)
class StoreStats:
    models: int
    stored_blobs: int
    physical_bytes: int  # bytes under blobs/
    preinstalled_models: int
    preinstalled_bytes: int  # indexed in place, never copied
    logical_bytes: int  # what every holder keeping its own copy would take
    quarantined: int
    pinned: int
    temp_bytes: int
    quarantine_files: int = 0  # what quarantine/ holds, whatever the index says
    quarantine_bytes: int = 0
    stored_bytes: int = 0  # each stored file once, at its full size (what users see)
    reclaimable_bytes: int = 0  # pack blocks no file's segment takes: `gc` frees them

    @property
    def saved_bytes(self) -> int:
        return max(0, self.logical_bytes - self.physical_bytes - self.preinstalled_bytes)

    @property
    def shared_saved_bytes(self) -> int:
        """What files sharing parts (segments) saved: stored files at their full size
        less what they take on disk."""
        return max(0, self.stored_bytes - self.physical_bytes)

    def to_json(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "stored_blobs": self.stored_blobs,
            "physical_bytes": self.physical_bytes,
            "preinstalled_models": self.preinstalled_models,
            "preinstalled_bytes": self.preinstalled_bytes,
            "logical_bytes": self.logical_bytes,
            "saved_bytes": self.saved_bytes,
            "quarantined": self.quarantined,
            "pinned": self.pinned,
            "temp_bytes": self.temp_bytes,
            "quarantine_files": self.quarantine_files,
            "quarantine_bytes": self.quarantine_bytes,
            "stored_bytes": self.stored_bytes,
            "shared_saved_bytes": self.shared_saved_bytes,
            "reclaimable_bytes": self.reclaimable_bytes,
        }


@dataclass(frozen=True, slots=True)
class VerifyProblem:
    digest: Digest
    path: Path
    problem: str  # "hash mismatch", "size mismatch", "missing"
    quarantined_to: Path | None


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checked: int
    bytes_hashed: int
    problems: tuple[VerifyProblem, ...]


def metadata_of(row: sqlite3.Row) -> ModelMetadata:
    return ModelMetadata.from_json(json.loads(row["metadata"]))


def derived_only(
    blob: sqlite3.Row | None, pre_row: sqlite3.Row | None, refs: Sequence[sqlite3.Row]
) -> bool:
    """A compiled form the host made (the compile cache), not a model anyone stored."""
    return (
        blob is not None
        and blob["origin"] == "derived"
        and pre_row is None
        and all(r["kind"] == "derived" for r in refs)
    )


def record_from_rows(
    obj: sqlite3.Row,
    blob: sqlite3.Row | None,
    pre_row: sqlite3.Row | None,
    refs: Iterable[sqlite3.Row],
) -> ModelRecord:
    refs = list(refs)
    stored = blob is not None and blob["state"] == "ok"
    if pre_row is not None:
        source = "preinstalled"
    else:
        source = blob["origin"] if blob is not None else "imported"
    return ModelRecord(
        digest=Digest(obj["sha256"]),
        size=obj["size"],
        metadata=metadata_of(obj),
        # a pre-installed folder's label, while it is configured (preinstalled_index.py)
        name=pre_row["name"] if pre_row is not None and pre_row["name"] else obj["name"],
        version=pre_row["version"] if pre_row is not None and pre_row["name"] else obj["version"],
        source=source,
        stored=stored,
        preinstalled_path=Path(pre_row["path"]) if pre_row is not None else None,
        quarantined=blob is not None and blob["state"] == "quarantined" and pre_row is None,
        pinned=any(r["kind"] == "pin" for r in refs),
        sites=tuple(r["key"] for r in refs if r["kind"] == "site"),
        shared_with=tuple(r["key"] for r in refs if r["kind"] == "share"),
        created_at=obj["created_at"],
    )
