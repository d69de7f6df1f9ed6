"""Storing an external-data split: the form of a model as two files, its graph
(``model.onnx``) and its tensors (``model.onnx_data``), made and checked by the
runtime worker (convert.py, ``split_external``).

Both files are published in one transaction, each with a provenance row (the data
file's recipe is the form's with its ``file``: `Recipe.file_key`), and kept like any
form: by the partition's ``site`` reference, so clearing the site forgets both, or in
the shared scope by a ``derived`` reference to the source. A form in the shared scope
(the user's own, or a common model's) is also recorded as a model manifest
(docs/manifests.md), listed by ``webmodels ls`` as one model of two files; a
partition's split gets no manifest row, which would outlive the site.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from webmodels.manifests.values import Entry, build_manifest
from webmodels.representations.form_segments import ingest_form
from webmodels.representations.recipes import DATA_FILE, DATA_GRAPH, Recipe
from webmodels.store.blobs import PendingBlob, hash_file
from webmodels.store.manifests import save_manifest
from webmodels.store.metadata import describe_file
from webmodels.store.representations import Provenance, publish_files
from webmodels.store.store import Store


def publish_split(
    store: Store, graph: PendingBlob, data: Path, provenance: Provenance, recipe: Recipe
) -> None:
    """Publish a checked split (``graph`` with provenance, ``data`` beside it)."""
    digest, size = hash_file(data)
    tensors = PendingBlob(data, digest, size)
    data_provenance = replace(provenance, recipe=recipe.file_key(DATA_FILE), form=digest)
    graph_metadata = describe_file(graph.temp_path)
    data_metadata = describe_file(data)
    # With segments on, the data file is cut at the offsets its graph names: each
    # tensor is the segment the source holds, and the split costs only its graph.
    recipes = ingest_form(store, [(graph, None), (tensors, graph.temp_path)])
    publish_files(
        store,
        [(graph, graph_metadata, provenance), (tensors, data_metadata, data_provenance)],
        recipes=recipes,
    )
    if not provenance.scope:
        entries = [
            Entry(DATA_GRAPH, graph.digest, graph.size, "graph"),
            Entry(DATA_FILE, digest, size, "external_data"),
        ]
        save_manifest(store.index, build_manifest(entries))
