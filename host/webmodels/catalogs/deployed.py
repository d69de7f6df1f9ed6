"""Catalogs an administrator deploys with the policy file (docs/fleet.md):

    [catalogs]                # or, unlocked: catalogs = [{ file = ..., key = ... }]
    locked = true
    [[catalogs.value]]
    file = "/srv/webmodels/acme.json"
    key = "BASE64-ED25519-PUBLIC-KEY"

Each user's host installs them when it starts, verified with the given key, exactly as
``webmodels catalog add FILE --key KEY`` would (rollback refused, a name keeps its key).
A file that fails is logged and skipped: the host still starts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from webmodels.catalogs import keeper
from webmodels.errors import HostError
from webmodels.store.index import Index

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeployedCatalog:
    file: Path
    key: str


def parse_deployed(value: object) -> tuple[DeployedCatalog, ...]:
    """The ``catalogs`` config value: a list of ``{file = PATH, key = BASE64}``."""
    if value is None:
        return ()
    problem = HostError("bad_request", "config key catalogs must list { file = ..., key = ... }")
    if not isinstance(value, list):
        raise problem
    found = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"file", "key"}:
            raise problem
        if not all(isinstance(v, str) for v in item.values()):
            raise problem
        found.append(DeployedCatalog(Path(item["file"]).expanduser(), item["key"]))
    return tuple(found)


def install_deployed(index: Index, catalogs: Sequence[DeployedCatalog]) -> int:
    """Install each catalog that is new or newer; the number installed or updated."""
    changed = 0
    for item in catalogs:
        try:
            _, updated = keeper.add(index, item.file.read_bytes(), key=item.key, source=None)
            changed += updated
        except (HostError, OSError) as exc:
            log.warning("catalog %s not installed: %s", item.file, exc)
    return changed
