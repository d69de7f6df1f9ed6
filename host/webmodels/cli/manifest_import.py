"""``webmodels import`` of a model made of several files (manifests/importing.py): a
folder, or an ONNX graph whose external-data files lie beside it. `store_cmd` hands
such paths here; each becomes one model manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

from webmodels.cli.main import CliContext
from webmodels.cli.output import ProgressBar, format_table, human_bytes, print_json
from webmodels.manifests.importing import (
    ManifestImport,
    external_data_beside,
    import_model_files,
)
from webmodels.store import Store
from webmodels.store.blobs import Progress


def is_model_set(path: Path) -> bool:
    """A folder, or an ONNX file that names external-data files."""
    return path.is_dir() or bool(external_data_beside(path))


def import_model_sets(args: argparse.Namespace, ctx: CliContext, store: Store) -> int:
    results: list[tuple[Path, ManifestImport]] = []
    bars: list[ProgressBar] = []

    def progress_for(relative: str, size: int) -> Progress:
        bars.append(ProgressBar(f"importing {relative}", size))
        return bars[-1].update

    for path in args.files:
        try:
            imported = import_model_files(
                store, path, name=args.name, version=args.model_version, progress_for=progress_for
            )
        finally:
            while bars:
                bars.pop().close()
        results.append((path, imported))
    if ctx.json:
        print_json([{"file": str(p), "manifest": r.manifest.to_json()} for p, r in results])
        return 0
    rows = [
        (r.manifest.digest.short, len(r.manifest.entries), human_bytes(r.manifest.size), p)
        for p, r in results
    ]
    print(format_table(["MANIFEST", "FILES", "SIZE", "FROM"], rows))
    return 0
