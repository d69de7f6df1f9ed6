"""``models.load`` of a model made of several files (docs/manifests.md): files a page
names by hash (``{files, graph}``, when the load asks for a compile), or a stored
manifest a page names (``{name, version}``).

Every member file passes the visibility gate of a single model (commons/gate.py), all
of them before any is judged; a manifest with one file the page may not see is
skipped, so the name answers exactly as if that manifest were absent (the usual name
resolution then decides: catalogs, pre-installed folders, or `not_found`). What the
page gets names only files it may see: their paths, hashes, sizes and roles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from webmodels.dispatch import Call
from webmodels.errors import HostError
from webmodels.manifests import selection
from webmodels.manifests.values import Manifest
from webmodels.naming.versions import Version, VersionError
from webmodels.query import ModelQuery
from webmodels.store.manifests import StoredManifest, manifests_named

if TYPE_CHECKING:
    from webmodels.app import Host


def load_files(host: Host, call: Call, query: Mapping[str, Any]) -> dict[str, Any]:
    """``load({files, graph}, {compile})``: checked as `sessions.create` checks them."""
    graph = query.get("graph")
    if graph is not None and not isinstance(graph, str):
        raise HostError("bad_request", "params.query.graph must be a path", field="graph")
    manifest = selection.page_files(
        query.get("files"), lambda d: host.commons.visible(d, call.context), graph=graph
    )
    return loaded_set(host, call, manifest, graph=graph)


def load_stored(host: Host, call: Call, query: ModelQuery) -> dict[str, Any] | None:
    """The newest manifest of ``query``'s name in its version range whose every file
    the caller may see, as a page model; None when there is none."""
    assert query.name is not None and query.range is not None
    if query.inline:  # a name with its own URL and integrity names one file
        return None
    chosen: tuple[Version, StoredManifest] | None = None
    for stored in manifests_named(host.store.index, str(query.name)):
        version = _version(stored.version)
        if version is None or not query.range.matches(version):
            continue
        if chosen is not None and version.key() <= chosen[0].key():
            continue
        if _all_visible(host, call, stored.manifest):
            chosen = (version, stored)
    if chosen is None:
        return None
    version, stored = chosen
    graphs = stored.manifest.graphs()
    graph = graphs[0].path if len(graphs) == 1 else None
    model = loaded_set(host, call, stored.manifest, graph=graph)
    return {**model, "name": stored.name, "version": str(version), "substituted": False}


def _all_visible(host: Host, call: Call, manifest: Manifest) -> bool:
    seen = [host.commons.visible(e.digest, call.context) for e in manifest.entries]  # all
    return all(record is not None for record in seen)


def loaded_set(host: Host, call: Call, manifest: Manifest, *, graph: str | None) -> dict[str, Any]:
    """Note the use, start the worker ahead, queue a compile when asked; the page's
    description of the set (its graph's locations checked against its files)."""
    # A model of weights only (safetensors or WebLLM shards) has no graph: the page reads
    # its files; there is nothing to check, start or compile for a session.
    runnable = graph is not None or bool(manifest.graphs())
    chosen = selection.session_files(host.store, manifest, graph=graph) if runnable else None
    partition = call.context.partition
    for entry in manifest.entries:
        if partition is not None:
            host.store.record_use(entry.digest, partition.key)
    if chosen is not None:
        host.sessions.prestart()
    if chosen is not None and call.params.boolean("compile", default=False):
        record = host.store.get(chosen.graph)
        if record is not None:
            scope = partition.key if partition is not None else ""  # as sessions.create
            host.sessions.request_compile(record, scope, chosen.external)
    described: dict[str, Any] = {
        "files": {
            e.path: {"sha256": e.digest.hex, "size": e.size, "role": e.role}
            for e in manifest.entries
        },
        "size": manifest.size,
    }
    if graph is not None:
        described["graph"] = graph
    return described


def _version(text: str | None) -> Version | None:
    try:
        return Version.parse(text) if text is not None else None
    except VersionError:
        return None
