"""Which files a session over a multi-file model uses: from a stored manifest (by its
hash or name) or from files a page names by hash
(``{"model.onnx": {"sha256": …}, "model.onnx_data": {"sha256": …}}``).

Every file a page names passes the same visibility gate as a single model
(``lookup``: commons/gate.py), before anything else is looked at: a file the page may
not see is answered exactly like an absent one (``not_found``), so grouping files
tells a page nothing about what other sites stored. Names are checked as manifest
paths (``bad_request``), then the graph's external-data locations against the files
(``model_unsafe``; manifests/graph.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.manifests.graph import choose_graph, graph_locations, match_locations
from webmodels.manifests.values import MAX_ENTRIES, Entry, Manifest, build_manifest, check_path
from webmodels.store.manifests import find_manifest, load_manifest
from webmodels.store.records import ModelRecord
from webmodels.store.store import Store

Lookup = Callable[[Digest], ModelRecord | None]  # the visibility gate; None: absent


@dataclass(frozen=True, slots=True)
class SessionFiles:
    graph: Digest
    external: tuple[tuple[str, Digest], ...]  # (location, file) for the runtime worker


def page_files(value: object, lookup: Lookup, *, graph: str | None) -> Manifest:
    """A manifest of the files a page named, each seen through ``lookup``."""
    if not isinstance(value, Mapping) or not value or len(value) > MAX_ENTRIES:
        raise _bad(f"an object of 1 to {MAX_ENTRIES} file names, each {{sha256}}")
    named: dict[str, Digest] = {}
    for name, ref in value.items():
        check_path(name)
        if not isinstance(ref, Mapping):
            raise _bad("an object of file names, each {sha256}")
        named[name] = Digest.parse(ref.get("sha256"), field="files")
    records = {name: lookup(digest) for name, digest in named.items()}  # all, then judge
    missing = [name for name, record in records.items() if record is None]
    if missing:  # `file`: the page's own key for it (it may ask for each file alone)
        raise HostError("not_found", "no such model is available to this site", file=missing[0])
    chosen = graph if graph is not None else _only_onnx(named)
    entries = [
        Entry(name, digest, _size(records[name]), "graph" if name == chosen else "other")
        for name, digest in named.items()
    ]
    return build_manifest(entries)


def stored_manifest(store: Store, value: object) -> Manifest:
    """A manifest the store holds, named by its hash or its name."""
    if not isinstance(value, str) or not 0 < len(value) <= 256:
        raise HostError("bad_request", "params.manifest must be a hash or a name", field="manifest")
    try:
        digest: Digest | None = Digest.parse(value, field="manifest")
    except HostError:
        digest = find_manifest(store.index, value)
    manifest = load_manifest(store.index, digest) if digest is not None else None
    if manifest is None:
        raise HostError("not_found", f"no model manifest {value!r} in the store")
    return manifest


def session_files(store: Store, manifest: Manifest, *, graph: str | None) -> SessionFiles:
    """The graph and its external data; files a page named become ``external_data``
    when the graph names them, and any location naming no file is ``model_unsafe``."""
    entry = choose_graph(manifest, graph)
    locations = graph_locations(store.locate(entry.digest).path)
    folder = PurePosixPath(entry.path).parent
    named = {(folder / location).as_posix() for location in locations}
    roles = [
        Entry(e.path, e.digest, e.size, "external_data" if e.path in named else e.role)
        for e in manifest.entries
    ]
    matched = match_locations(build_manifest(roles), entry, locations)
    return SessionFiles(
        entry.digest, tuple((loc, e.digest) for loc, e in sorted(matched.external.items()))
    )


def _only_onnx(named: Mapping[str, Digest]) -> str | None:
    graphs = [name for name in named if name.lower().endswith(".onnx")]
    return graphs[0] if len(graphs) == 1 else None


def _size(record: ModelRecord | None) -> int:
    assert record is not None
    return record.size


def _bad(what: str) -> HostError:
    return HostError("bad_request", f"params.files must be {what}", field="files")
