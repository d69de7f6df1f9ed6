"""Store health for `webmodels doctor`: index integrity, leftovers, quarantine, space."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from webmodels.store.gc import plan_gc
from webmodels.store.index import SCHEMA_VERSION
from webmodels.store.store import Store


@dataclass(frozen=True, slots=True)
class StoreHealth:
    path: str
    integrity: str  # "ok" or SQLite's first complaint
    schema_version: int
    models: int
    quarantined: int
    leftovers: int  # items `webmodels gc` would remove
    leftover_bytes: int
    free_bytes: int

    @property
    def problems(self) -> list[str]:
        found = []
        if self.integrity != "ok":
            found.append(f"index integrity check failed: {self.integrity}")
        if self.schema_version != SCHEMA_VERSION:
            found.append(f"index schema {self.schema_version}, expected {SCHEMA_VERSION}")
        return found

    @property
    def warnings(self) -> list[str]:
        found = []
        if self.quarantined:
            found.append(f"{self.quarantined} quarantined model(s)")
        if self.leftovers:
            found.append(f"{self.leftovers} leftover item(s) ({self.leftover_bytes} bytes)")
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "integrity": self.integrity,
            "schema_version": self.schema_version,
            "models": self.models,
            "quarantined": self.quarantined,
            "leftovers": self.leftovers,
            "leftover_bytes": self.leftover_bytes,
            "free_bytes": self.free_bytes,
        }


def store_health(store: Store) -> StoreHealth:
    integrity = str(store.index.query("PRAGMA quick_check")[0][0])
    records = store.list_models()
    plan = plan_gc(store)
    leftovers = [i for i in plan.items if i.kind != "blob"]
    return StoreHealth(
        path=str(store.root),
        integrity=integrity,
        schema_version=store.index.schema_version,
        models=sum(1 for r in records if r.servable),
        quarantined=sum(1 for r in records if r.quarantined),
        leftovers=len(leftovers),
        leftover_bytes=sum(i.size for i in leftovers),
        free_bytes=shutil.disk_usage(store.root).free,
    )
