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


@dataclass(frozen=True, slots=True)
class FolderScan:
    entries: list[PreinstalledEntry]  # the valid entries
    problems: list[str]  # what was skipped and why, for `webmodels ls` and `doctor`


def read_folder(folder: Path) -> list[PreinstalledEntry]:
    """The valid entries of ``folder/models.json``; bad ones are logged and skipped."""
    scan = scan_folder(folder)
    for problem in scan.problems:
        log.warning("pre-installed: %s", problem)
    return scan.entries


def scan_folder(folder: Path, *, required: bool = False) -> FolderScan:
    """The entries of ``folder/models.json`` and what is wrong with the rest. A folder
    without a ``models.json`` (or no folder at all) is a problem only when `required`:
    the system folders usually do not exist."""
    manifest = folder / MANIFEST
    try:
        document = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not required:
            return FolderScan([], [])
        what = "has no models.json" if folder.is_dir() else "does not exist"
        return FolderScan([], [f"pre-installed folder {folder} {what}"])
    except (OSError, ValueError) as exc:
        return FolderScan([], [f"{manifest} is ignored: {exc}"])
    models = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models, list):
        return FolderScan([], [f"{manifest} is ignored: it has no 'models' list"])
    entries, problems = [], []
    for item in models:
        entry = _entry(folder, item)
        if isinstance(entry, str):
            problems.append(f"{manifest}: {entry}")
        else:
            entries.append(entry)
    return FolderScan(entries, problems)


def _entry(folder: Path, item: Any) -> PreinstalledEntry | str:
    """The entry, or why it is skipped."""
    if not isinstance(item, dict) or not isinstance(item.get("file"), str):
        return f"an entry without a 'file' is skipped: {item!r:.80}"
    path = safe_join(folder, item["file"])
    if path is None:
        return f"{item['file']!r} is skipped: not a file inside the folder"
    declared = None
    if item.get("sha256") is not None:
        try:
            declared = Digest.parse(item["sha256"])
        except Exception:
            return f"{item['file']!r} is skipped: its sha256 is not 64 hex digits"
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
