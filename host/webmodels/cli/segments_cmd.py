"""Segment commands: ``webmodels store convert`` and what ``du`` shows of segments
(``du --models``, ``du --explain SHA|NAME``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from webmodels.cli.main import CliContext
from webmodels.cli.output import ProgressBar, format_table, human_bytes, print_json
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.store import Store
from webmodels.store.convert import Pending, pending_files, run_conversion
from webmodels.store.records import ModelRecord
from webmodels.store.segments.sharing import explain, load_recipes, usage


def register(sub: Any) -> None:
    text = "store maintenance: convert files stored whole to segments"
    parser: argparse.ArgumentParser = sub.add_parser("store", help=text, description=text)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    text = (
        "convert every file stored whole to segments, file by file (resumable: stop it "
        "at any point and run it again); runs whatever [store] segments says"
    )
    convert = actions.add_parser("convert", help=text, description=text)
    convert.set_defaults(func=_run_convert)


def _run_convert(args: argparse.Namespace, ctx: CliContext) -> int:
    with Store.open(ctx.config) as store:
        todo = pending_files(store)
        total = sum(item.size for item in todo)
        bar = ProgressBar("converting", total)
        done_bytes = 0

        def progress(item: Pending, converted: bool) -> None:
            nonlocal done_bytes
            done_bytes += item.size
            bar.update(done_bytes)
            if not ctx.json and not bar.enabled:
                state = "converted" if converted else "skipped"
                print(f"{state} {item.digest.hex} ({human_bytes(item.size)})", flush=True)

        try:
            report = run_conversion(store, progress=progress)
        finally:
            bar.close()
    if ctx.json:
        print_json(
            {"converted": report.converted, "bytes": report.bytes, "skipped": report.skipped}
        )
    else:
        print(f"converted {report.converted} files ({human_bytes(report.bytes)})", end="")
        print(f"; skipped {report.skipped}" if report.skipped else "")
    return 0


def find(store: Store, text: str) -> ModelRecord:
    """A SHA-256 (or a unique prefix), else the name of one stored file."""
    from webmodels.cli.store_cmd import resolve

    try:
        return resolve(store, text)
    except HostError:
        named = [r for r in store.list_models() if r.name == text]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise HostError("bad_request", f"{len(named)} files are named {text!r}") from None
        raise


def du_explain(ctx: CliContext, store: Store, text: str) -> int:
    record = find(store, text)
    with store.index.snapshot() as db:
        recipes = load_recipes(db)
    shared = explain(recipes, record.digest)
    names = {r.digest: r.name or "-" for r in store.list_models()}
    recipe = recipes.get(record.digest)
    if ctx.json:
        print_json(
            {
                "sha256": record.digest.hex,
                "size": record.size,
                "segmented": recipe is not None,
                "segments": len({s.digest for s in recipe.segments}) if recipe else 0,
                "shares": [
                    {"sha256": s.other.hex, "name": names.get(s.other), "segments": s.segments}
                    | {"bytes": s.bytes}
                    for s in shared
                ],
            }
        )
        return 0
    if recipe is None:
        print(f"{record.digest.hex} is stored whole: it shares no bytes below the file")
        print("(webmodels store convert keeps it as segments)")
        return 0
    count = len({s.digest for s in recipe.segments})
    print(f"{record.digest.hex}: {human_bytes(record.size)} in {count} segments")
    if not shared:
        print("shares no segment with another stored file")
        return 0
    rows = [
        (s.other.short, names.get(s.other, "-"), s.segments, human_bytes(s.bytes)) for s in shared
    ]
    print(format_table(["SHARES WITH", "NAME", "SEGMENTS", "BYTES"], rows))
    return 0


def du_models(ctx: CliContext, store: Store) -> int:
    records = [r for r in store.list_models() if r.stored]
    with store.index.snapshot() as db:
        recipes = load_recipes(db)
    rows = usage(recipes, {r.digest: r.size for r in records})
    names: dict[Digest, str] = {r.digest: r.name or "-" for r in records}
    if ctx.json:
        print_json(
            [
                {"sha256": u.digest.hex, "name": names[u.digest], "logical": u.logical}
                | {"own": u.own, "shared": u.shared, "segmented": u.segmented}
                for u in rows
            ]
        )
        return 0
    if not rows:
        print("no stored models", file=sys.stderr)
        return 0
    table = [
        (
            u.digest.short,
            names[u.digest],
            human_bytes(u.logical),
            human_bytes(u.own),
            human_bytes(u.shared),
            "segments" if u.segmented else "whole",
        )
        for u in rows
    ]
    print(format_table(["SHA256", "NAME", "LOGICAL", "OWN", "SHARED", "KEPT AS"], table))
    print("OWN: bytes only this file holds; SHARED: bytes held once for it and others")
    return 0
