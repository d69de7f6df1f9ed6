"""Pre-installed model folders: each holds a ``models.json`` naming its files.

::

    {"version": 1,
     "models": [{"file": "magika/model.onnx", "sha256": "<64 hex>",
                 "name": "google/magika", "version": "1.0.3"}]}

Files are indexed in place, read-only, never copied. A listed path must stay inside
its folder (no absolute paths, no ``..``, no link leading out), as huggingface_hub
validates every relative path of its cache.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from webmodels.digest import Digest

log = logging.getLogger(__name__)
MANIFEST = "models.json"


@dataclass(frozen=True, slots=True)
class PreinstalledEntry:
    folder: Path
    path: Path  # absolute, inside folder
    declared: Digest | None
    name: str | None
    version: str | None


def read_folder(folder: Path) -> list[PreinstalledEntry]:
    """The valid entries of ``folder/models.json``; bad ones are logged and skipped."""
    manifest = folder / MANIFEST
    try:
        document = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", manifest, exc)
        return []
    models = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models, list):
        log.warning("ignoring %s: no 'models' list", manifest)
        return []
    entries = []
    for item in models:
        entry = _entry(folder, item)
        if entry is not None:
            entries.append(entry)
    return entries


def _entry(folder: Path, item: Any) -> PreinstalledEntry | None:
    if not isinstance(item, dict) or not isinstance(item.get("file"), str):
        log.warning("%s: entry without a 'file': %r", folder / MANIFEST, item)
        return None
    path = safe_join(folder, item["file"])
    if path is None:
        log.warning("%s: refusing path %r (must stay inside the folder)", folder, item["file"])
        return None
    declared = None
    if item.get("sha256") is not None:
        try:
            declared = Digest.parse(item["sha256"])
        except Exception:
            log.warning("%s: bad sha256 for %s", folder / MANIFEST, item["file"])
            return None
    name = item.get("name") if isinstance(item.get("name"), str) else None
    version = item.get("version") if isinstance(item.get("version"), str) else None
    return PreinstalledEntry(folder, path, declared, name, version)


def safe_join(folder: Path, relative: str) -> Path | None:
    """``folder / relative`` if it names a regular file inside `folder`, else None."""
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or not pure.parts or ".." in pure.parts or ":" in pure.parts[0]:
        return None
    candidate = folder.joinpath(*pure.parts)
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(folder.resolve()) or not resolved.is_file():
        return None
    return candidate
