"""Where name queries find candidates: the catalogs in force, the pre-installed folders
(their ``models.json`` names and versions) and the request's own inline descriptor.

What other sites stored never becomes a candidate: resolution must answer every site
alike, and names a page attached to its own download are not signed by anyone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from webmodels.catalogs import keeper
from webmodels.catalogs.documents import Catalog, read_catalog
from webmodels.digest import Digest
from webmodels.naming.resolve import Candidate, Choice, NameQuery, resolve
from webmodels.naming.versions import ModelName, Version, VersionError
from webmodels.store.metadata import ModelMetadata
from webmodels.store.store import Store


class NameSources:
    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._parsed: dict[tuple[str, int, float], Catalog] = {}  # parsed once per version
        self._indexed: _CatalogIndex | None = None  # of the catalogs in force, rebuilt on change

    def catalogs(self) -> list[Catalog]:
        """The catalogs in force (not expired), parsed once per installed version."""
        rows = self.store.index.query("SELECT name, version, installed_at FROM catalogs")
        wanted = {(r["name"], r["version"], r["installed_at"]) for r in rows}
        with self._lock:
            for stale in set(self._parsed) - wanted:
                del self._parsed[stale]
            for key in wanted - set(self._parsed):
                found = self.store.index.query(
                    "SELECT document FROM catalogs WHERE name = ?", (key[0],)
                )
                if found:
                    self._parsed[key] = read_catalog(bytes(found[0]["document"]))
            parsed = list(self._parsed.values())
        now = datetime.fromtimestamp(self._clock(), UTC)
        return sorted((c for c in parsed if not c.expired(now)), key=lambda c: c.name)

    def label(self, digest: Digest) -> tuple[str, str] | None:
        """(name, version) of these bytes in a pre-installed folder or, else, in the
        first catalog in force (by name) that lists them; None when none does."""
        rows = self.store.index.query(
            "SELECT name, version FROM preinstalled WHERE sha256 = ? AND state = 'ok' "
            "AND name IS NOT NULL AND version IS NOT NULL ORDER BY path LIMIT 1",
            (digest.hex,),
        )
        if rows:
            return str(rows[0]["name"]), str(rows[0]["version"])
        return self._index().labels.get(digest)

    def _index(self) -> _CatalogIndex:
        """The catalogs' entries by name (and by the names they call equivalent) and
        by hash, built once per set of catalogs: a request then looks at the few
        candidates of its name, not at every entry (scripts/bench/names.py)."""
        catalogs = self.catalogs()
        with self._lock:
            key = [c.payload for c in catalogs]
            if self._indexed is None or self._indexed.of != key:
                self._indexed = _CatalogIndex.build(catalogs, key)
            return self._indexed

    def candidates_for(self, name: ModelName, inline: Candidate | None = None) -> list[Candidate]:
        """What a query for `name` may be answered with: its versions, and the models
        declared equivalent to them either way; pre-installed ones first."""
        index = self._index()
        pre: dict[ModelName, list[Candidate]] = {}
        for candidate in self.preinstalled():
            pre.setdefault(candidate.name, []).append(candidate)

        def of(wanted: ModelName) -> list[Candidate]:
            return pre.get(wanted, []) + index.by_name.get(wanted, [])

        found = of(name)
        related = {ref.name for c in found for ref in c.equivalents}
        related |= {c.name for c in index.pointing.get(name, [])}
        for other in sorted(related - {name}, key=str):
            found += of(other)
        return found + ([inline] if inline is not None else [])

    def candidates(self, inline: Candidate | None = None) -> list[Candidate]:
        found = self.preinstalled()
        for catalog in self.catalogs():
            found += [Candidate.from_entry(e, catalog.name) for e in catalog.entries]
        return found + ([inline] if inline is not None else [])

    def preinstalled(self) -> list[Candidate]:
        """Pre-installed files with a name and a valid version in their models.json."""
        rows = self.store.index.query(
            "SELECT DISTINCT sha256, size, name, version FROM preinstalled "
            "WHERE state = 'ok' AND name IS NOT NULL AND version IS NOT NULL"
        )
        found = []
        for row in rows:
            try:
                name, version = ModelName.parse(row["name"]), Version.parse(row["version"])
            except VersionError:
                continue  # a folder's own label, not a name query can match
            found.append(
                Candidate(name, version, Digest(row["sha256"]), row["size"], (), "preinstalled")
            )
        return found

    def resolve(
        self,
        query: NameQuery,
        *,
        visible: Callable[[Digest], bool],
        inline: Candidate | None = None,
    ) -> Choice | None:
        found = self.candidates_for(query.name, inline)
        return resolve(query, found, visible=visible, described=self.described)

    def described(self, digest: Digest) -> ModelMetadata | None:
        """The metadata read from the model's own bytes when it was stored or indexed."""
        record = self.store.get(digest)
        return record.metadata if record is not None and record.servable else None

    def versions_of(self, name: ModelName) -> Sequence[Candidate]:
        return [c for c in self.candidates() if c.name == name]


def record_request(store: Store, *, partition: str, query: NameQuery) -> None:
    keeper.record_request(
        store.index, partition=partition, name=str(query.name), range_text=query.range.text
    )


@dataclass(frozen=True, slots=True)
class _CatalogIndex:
    of: list[bytes]  # the payloads it was built from
    by_name: dict[ModelName, list[Candidate]]
    pointing: dict[ModelName, list[Candidate]]  # entries that call a name equivalent
    labels: dict[Digest, tuple[str, str]]  # the first catalog's name for the bytes

    @classmethod
    def build(cls, catalogs: Sequence[Catalog], of: list[bytes]) -> _CatalogIndex:
        by_name: dict[ModelName, list[Candidate]] = {}
        pointing: dict[ModelName, list[Candidate]] = {}
        labels: dict[Digest, tuple[str, str]] = {}
        for catalog in catalogs:  # in name order: the first one wins ties
            for entry in catalog.entries:
                candidate = Candidate.from_entry(entry, catalog.name)
                by_name.setdefault(candidate.name, []).append(candidate)
                for ref in candidate.equivalents:
                    pointing.setdefault(ref.name, []).append(candidate)
                labels.setdefault(entry.digest, (str(entry.name), str(entry.version)))
        return cls(of, by_name, pointing, labels)
