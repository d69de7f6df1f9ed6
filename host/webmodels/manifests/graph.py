"""A graph's external data, matched against its manifest.

ONNX names an external-data file by a ``location`` relative to the graph's own folder.
Here that location must name, exactly, an ``external_data`` entry of the same manifest
in the graph's folder (or below it): a location that is unsafe as a path (absolute,
``..``, a backslash or drive letter) or that names no such entry is refused with
``model_unsafe``, before anything is opened. The locations come from the graph's
metadata alone, read by the capped wire reader (store/onnx_wire.py): the external
files themselves are never read here.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from webmodels.errors import HostError
from webmodels.manifests.values import Entry, Manifest, check_path
from webmodels.store.onnx_wire import WireCapped, WireInvalid, read_wire_metadata


@dataclass(frozen=True, slots=True)
class GraphFiles:
    """The files a session of ``graph`` needs: its external data by location."""

    graph: Entry
    external: Mapping[str, Entry]


def graph_locations(path: Path) -> frozenset[str]:
    """The external-data locations the ONNX graph at ``path`` names (metadata only);
    `model_invalid` if it is not a well-formed ONNX model within the reader's caps."""
    found: set[str] = set()
    try:
        read_wire_metadata(path, locations=found)
    except (WireInvalid, WireCapped) as exc:
        raise HostError("model_invalid", f"the graph is not a readable ONNX model: {exc}") from exc
    except OSError as exc:  # the disk under the store failed: not a property of the file
        raise HostError("internal", f"cannot read {path}: {exc.strerror or exc}") from exc
    return frozenset(found)


def match_locations(manifest: Manifest, graph: Entry, locations: frozenset[str]) -> GraphFiles:
    """Each location → the manifest entry it names; `model_unsafe` for any other."""
    folder = posixpath.dirname(graph.path)
    external: dict[str, Entry] = {}
    for location in sorted(locations):
        try:
            check_path(location, field="location")
        except HostError as exc:
            raise _unsafe(location, "is not a safe relative path") from exc
        entry = manifest.entry(posixpath.join(folder, location) if folder else location)
        if entry is None or entry.role != "external_data":
            raise _unsafe(location, "names no external-data file of the model's manifest")
        external[location] = entry
    return GraphFiles(graph, external)


def choose_graph(manifest: Manifest, wanted: str | None, *, field: str = "graph") -> Entry:
    """The graph a session runs: ``wanted`` (a path), or the manifest's only graph."""
    graphs = manifest.graphs()
    if wanted is not None:
        found = manifest.entry(wanted)
        if found is None or found.role != "graph":
            raise HostError(
                "bad_request", f"params.{field} names no graph of the model", field=field
            )
        return found
    if len(graphs) != 1:
        raise HostError(
            "bad_request",
            f"the model has {len(graphs)} graphs; name one with params.{field}",
            field=field,
        )
    return graphs[0]


def _unsafe(location: str, why: str) -> HostError:
    return HostError(
        "model_unsafe", f"the graph's external-data location {location!r} {why}", location=location
    )
