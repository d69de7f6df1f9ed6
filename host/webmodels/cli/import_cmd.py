"""``webmodels import``: copy files into the store, each on its own.

One file that is refused (not ONNX, unreadable, unsafe) never stops the others: every
file gets a row (stored / already stored / refused and why) and the command exits 1
if any was refused. Labels follow the rules of names and versions everywhere else
(``publisher/model``, SemVer), and a stored model keeps its label unless ``--rename``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmodels.cli.main import CliContext
from webmodels.cli.output import ProgressBar, format_table, human_bytes, print_json
from webmodels.cli.store_cmd import _add
from webmodels.errors import HostError
from webmodels.naming.versions import ModelName, Version, VersionError
from webmodels.store import Store
from webmodels.store.labels import relabel
from webmodels.store.records import ModelRecord


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one file."""

    file: Path
    model: ModelRecord | None = None
    deduplicated: bool = False
    error: HostError | None = None
    note: str = ""

    @property
    def result(self) -> str:
        if self.error is not None:
            return "refused"
        return "already stored" if self.deduplicated else "stored"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "result": self.result,
            "deduplicated": self.deduplicated,
            "model": self.model.manage_info() if self.model else None,
            "error": self.error.to_wire() if self.error else None,
            "note": self.note or None,
        }


def register(sub: Any) -> None:
    p = _add(sub, "import", cmd_import, "copy model files into the store (ONNX is checked)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument(
        "--name", help="publisher/model name to record (or publisher/model@VERSION, as for pull)"
    )
    p.add_argument("--model-version", dest="model_version", help="SemVer version to record")
    p.add_argument("--raw", action="store_true", help="store any file as an opaque blob")
    p.add_argument(
        "--rename", action="store_true", help="replace the label of a model already stored"
    )


def check_labels(name: str | None, version: str | None) -> None:
    """The same rules as `pull NAME@RANGE` and the catalogs: lowercase publisher/model,
    a SemVer version."""
    try:
        if name is not None:
            ModelName.parse(name)
        if version is not None:
            Version.parse(version)
    except VersionError as exc:
        raise HostError("bad_request", str(exc)) from exc


def cmd_import(args: argparse.Namespace, ctx: CliContext, store: Store) -> int:
    from webmodels.cli import manifest_import  # a folder or ONNX with external data

    if args.name is not None and "@" in args.name and args.model_version is None:
        args.name, args.model_version = args.name.split("@", 1)  # pub/model@1.0.0
    check_labels(args.name, args.model_version)
    if not args.raw and any(manifest_import.is_model_set(p) for p in args.files):
        return manifest_import.import_model_sets(args, ctx, store)
    outcomes = [import_one(store, path, args) for path in args.files]
    failed = [o for o in outcomes if o.error is not None]
    if len(outcomes) == 1 and failed and failed[0].error is not None:
        raise failed[0].error  # one file: its error, as any command reports one
    if ctx.json:
        print_json([o.to_json() for o in outcomes])
    else:
        print_outcomes(outcomes)
    return 1 if failed else 0


def import_one(store: Store, path: Path, args: argparse.Namespace) -> Outcome:
    size = path.stat().st_size if path.is_file() else None
    bar = ProgressBar(f"importing {path.name}", size)
    try:
        result = store.import_file(path, raw=args.raw, progress=bar.update)
    except HostError as exc:
        return Outcome(path, error=exc)
    except OSError as exc:
        return Outcome(path, error=HostError("internal", f"cannot import {path}: {exc}"))
    finally:
        bar.close()
    model, note = label(store, result.model, args)
    return Outcome(path, model=model, deduplicated=result.deduplicated, note=note)


def label(store: Store, model: ModelRecord, args: argparse.Namespace) -> tuple[ModelRecord, str]:
    """Give the model the label asked for, unless it has another one and no --rename."""
    name, version = args.name, args.model_version
    if (name is None or name == model.name) and (version is None or version == model.version):
        return model, ""
    if model.name is None and model.version is None:
        return relabel(store, model.digest, name, version), ""
    was = f"{model.name or '-'}@{model.version or '-'}"
    if args.rename:
        return relabel(store, model.digest, name, version), f"renamed (was {was})"
    return model, f"kept its label {was} (--rename to replace it)"


def print_outcomes(outcomes: list[Outcome]) -> None:
    rows = [
        (
            o.result,
            o.model.digest.short if o.model else "",
            o.model.format if o.model else "",
            human_bytes(o.model.size) if o.model else "",
            o.file,
            f"[{o.error.code}] {o.error.message}" if o.error else o.note,
        )
        for o in outcomes
    ]
    print(format_table(["RESULT", "SHA256", "FORMAT", "SIZE", "FILE", "NOTE"], rows))
    failed = sum(o.error is not None for o in outcomes)
    if failed:
        print(f"{failed} of {len(outcomes)} files refused")
