"""Store commands: ``ls``, ``rm``, ``pin``, ``unpin``, ``du``, ``verify``, ``gc``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from webmodels.cli import manifest_cmd
from webmodels.cli.main import CliContext
from webmodels.cli.output import ProgressBar, format_table, human_bytes, print_json, print_kv
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.representations.declared import all_declared
from webmodels.store import Store
from webmodels.store.gc import execute_gc, plan_gc
from webmodels.store.listing import Order, Scan, scan
from webmodels.store.preinstalled_index import configured_problems
from webmodels.store.records import ModelRecord
from webmodels.store.representations import all_forms
from webmodels.store.verify import total_bytes, verify_store

Command = Callable[[argparse.Namespace, CliContext, Store], int]


def register(sub: Any) -> None:
    _add(sub, "ls", cmd_ls, "list the models in the store")
    p = _add(
        sub,
        "rm",
        cmd_rm,
        "delete models (by SHA-256 or a unique prefix of it; a multi-file model also "
        "by its name or NAME@VERSION)",
    )
    p.add_argument("models", nargs="+", metavar="SHA256|NAME")
    p.add_argument(
        "--force",
        action="store_true",
        help="delete even if pinned, or a file of a multi-file model (with that model)",
    )
    p = _add(sub, "pin", cmd_pin, "protect models from deletion and eviction")
    p.add_argument("models", nargs="+", metavar="SHA256")
    p = _add(sub, "unpin", cmd_unpin, "remove the protection of pin")
    p.add_argument("models", nargs="+", metavar="SHA256")
    p = _add(sub, "du", cmd_du, "disk usage: logical against physical bytes")
    p.add_argument(
        "--explain",
        metavar="SHA256|NAME",
        help="what this file shares below the file with which other stored files",
    )
    p.add_argument("--models", action="store_true", help="per model: logical, own and shared bytes")
    _add(sub, "verify", cmd_verify, "re-hash every model; quarantine corrupt ones")
    p = _add(sub, "gc", cmd_gc, "remove unreferenced blobs and leftovers")
    p.add_argument("--dry-run", action="store_true", help="show the plan only")
    p.add_argument(
        "--quarantine",
        action="store_true",
        help="remove every quarantined file now (default: those older than quarantine_days)",
    )
    p.add_argument(
        "--quarantine-days",
        type=float,
        metavar="N",
        help="remove quarantined files older than N days (config quarantine_days, 30)",
    )


def _add(sub: Any, name: str, command: Command, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)

    def run(args: argparse.Namespace, ctx: CliContext) -> int:
        with Store.open(ctx.config) as store:
            return command(args, ctx, store)

    parser.set_defaults(func=run)
    return parser


def resolve(store: Store, text: str) -> ModelRecord:
    """A full SHA-256, or a prefix of at least 6 hex characters naming one model."""
    value = text.lower().removeprefix("sha256:")
    if len(value) == 64:
        record = store.get(Digest.parse(value))
        if record is None:
            raise HostError("not_found", f"no model with SHA-256 {value}")
        return record
    if len(value) < 6 or any(c not in "0123456789abcdef" for c in value):
        raise HostError(
            "bad_request",
            f"{text!r}: give a SHA-256, at least 6 of its hex digits, or the name of a "
            "stored model of several files (see webmodels ls)",
        )
    matches = [r for r in store.list_models() if r.digest.hex.startswith(value)]
    if not matches:
        raise HostError("not_found", f"no model matching {text!r}")
    if len(matches) > 1:
        raise HostError(
            "bad_request", f"{len(matches)} models match {text!r}; give more of the SHA-256"
        )
    return matches[0]


def cmd_ls(args: argparse.Namespace, ctx: CliContext, store: Store) -> int:
    # Read a batch at a time in label order, a model's files together (store/listing.py).
    everything = [record for _, record in scan(store.index, Scan(Order.LABEL), None)]
    forms = known_forms(store)  # derived and catalog-declared forms, by their digest
    for problem in configured_problems(store, ctx.config):  # stderr: --json stays JSON
        print(f"webmodels: warning: {problem}", file=sys.stderr)
    found = manifest_cmd.listing(store, everything)  # a manifest's files under it
    records = grouped(found.files, forms)
    if ctx.json:
        listed = manifest_cmd.listing_json(found)
        for row in listed:  # a derived form says what it was derived from
            if row["kind"] == "file":
                row |= form_info(forms, Digest.parse(row["sha256"]))
        print_json(listed)
        return 0
    if not records and not found.manifests:
        print("no models (add one with: webmodels import FILE)")
        return 0
    labels = catalog_labels(store)
    rows = [
        (
            f"  └ {r.digest.short}" if r.digest in forms else r.digest.short,
            r.name or labels.get(r.digest, ("-", "-"))[0],
            r.version or labels.get(r.digest, ("-", "-"))[1],
            r.format,
            human_bytes(r.size),
            "quarantined" if r.quarantined else form_source(forms, r.digest) or r.source,
            "yes" if r.pinned else "",
            len(r.sites),
        )
        for r in records
    ]
    table = [*manifest_cmd.manifest_rows(found), *rows]
    headers = ["SHA256", "NAME", "VERSION", "FORMAT", "SIZE", "SOURCE", "PINNED", "SITES"]
    print(format_table(headers, table))
    return 0


@dataclass(frozen=True, slots=True)
class FormOf:
    """A form as `ls` shows it: the model it is a form of, its badge and what ``--json``
    says of it."""

    source: Digest
    badge: str
    representation: dict[str, Any]


def known_forms(store: Store) -> dict[Digest, FormOf]:
    """The forms the host derived (with provenance), then those a catalog in force
    declares (the model's publisher made them): by their own digest."""
    found: dict[Digest, FormOf] = {}
    for made in all_forms(store.index):
        recipe = json.loads(made.recipe)
        badge = f"{recipe['dtype']}{' ort' if recipe.get('format') == 'ort' else ''} form"
        found[made.form] = FormOf(made.source, badge, made.to_json())
    for digest, (source, form) in all_declared(store.index).items():
        badge = f"{form.dtype}{' ort' if form.format == 'ort' else ''} form (catalog)"
        described = form.to_json() | {"source": "catalog"}
        found.setdefault(digest, FormOf(source, badge, described))
    return found


def grouped(records: list[ModelRecord], forms: Mapping[Digest, FormOf]) -> list[ModelRecord]:
    """Each form right under its model (when the model is listed too)."""
    listed = {r.digest for r in records}
    under: dict[Digest, list[ModelRecord]] = {}
    for record in records:
        made = forms.get(record.digest)
        if made is not None and made.source in listed:
            under.setdefault(made.source, []).append(record)
    placed = {r.digest for group in under.values() for r in group}
    out: list[ModelRecord] = []
    for record in records:
        if record.digest not in placed:
            out += [record, *under.get(record.digest, [])]
    return out


def form_source(forms: Mapping[Digest, FormOf], digest: Digest) -> str | None:
    made = forms.get(digest)
    return None if made is None else made.badge


def form_info(forms: Mapping[Digest, FormOf], digest: Digest) -> dict[str, Any]:
    made = forms.get(digest)
    if made is None:
        return {}
    return {"derived_from": made.source.hex, "representation": made.representation}


def catalog_labels(store: Store) -> dict[Digest, tuple[str, str]]:
    """Names and versions the catalogs in force give stored models (first one wins)."""
    from webmodels.naming.sources import NameSources

    labels: dict[Digest, tuple[str, str]] = {}
    for candidate in NameSources(store).candidates():
        labels.setdefault(candidate.digest, (str(candidate.name), str(candidate.version)))
    return labels


def cmd_rm(args: argparse.Namespace, ctx: CliContext, store: Store) -> int:
    manifests = [manifest_cmd.find_manifest_arg(store, text) for text in args.models]
    records = [resolve(store, t) for t, m in zip(args.models, manifests, strict=True) if not m]
    manifest_cmd.release_files(store, records, force=args.force)  # all resolve first
    freed = manifest_cmd.remove_manifests(store, [m for m in manifests if m], force=args.force)
    records = [r for r in records if store.get(r.digest) is not None]
    for record in records:
        freed += store.delete(record.digest, force=args.force)
    if ctx.json:
        deleted = [m.manifest.digest.hex for m in manifests if m] + [r.digest.hex for r in records]
        print_json({"deleted": deleted, "freed_bytes": freed})
    else:
        for stored in filter(None, manifests):
            print(f"deleted model {stored.label} ({len(stored.manifest.entries)} files)")
        for record in records:
            print(f"deleted {record.digest.hex}")
        print(f"freed {human_bytes(freed)}")
    return 0


def cmd_pin(args: argparse.Namespace, ctx: CliContext, store: Store) -> int:
    return _set_pin(args, ctx, store, pinned=True)


def cmd_unpin(args: argparse.Namespace, ctx: CliContext, store: Store) -> int:
    return _set_pin(args, ctx, store, pinned=False)


def _set_pin(args: argparse.Namespace, ctx: CliContext, store: Store, *, pinned: bool) -> int:
    records = [store.pin(resolve(store, text).digest, pinned) for text in args.models]
    if ctx.json:
        print_json([r.manage_info() for r in records])
    else:
        for record in records:
            print(f"{'pinned' if pinned else 'unpinned'} {record.digest.hex}")
    return 0


def cmd_du(args: argparse.Namespace, ctx: CliContext, store: Store) -> int:
    from webmodels.cli import segments_cmd

    if args.explain:
        return segments_cmd.du_explain(ctx, store, args.explain)
    if args.models:
        return segments_cmd.du_models(ctx, store)
    stats = store.stats()
    if ctx.json:
        print_json({**stats.to_json(), "store_path": str(store.root)})
        return 0
    print_kv(
        {
            "store": str(store.root),
            "models": stats.models,
            "stored blobs": f"{stats.stored_blobs} ({human_bytes(stats.physical_bytes)} on disk)",
            "pre-installed": f"{stats.preinstalled_models} "
            f"({human_bytes(stats.preinstalled_bytes)}, in place, not copied)",
            "logical size": f"{human_bytes(stats.logical_bytes)} "
            "(one copy per importer, site and pre-installed location)",
            "saved": f"{human_bytes(stats.saved_bytes)} by deduplication",
            "files": f"{human_bytes(stats.stored_bytes)} stored, "
            f"{human_bytes(stats.physical_bytes)} on disk "
            f"({human_bytes(stats.shared_saved_bytes)} saved by shared parts)",
            "quarantined": f"{stats.quarantined} model(s); {stats.quarantine_files} file(s), "
            f"{human_bytes(stats.quarantine_bytes)} in quarantine/ (`gc --quarantine` removes)",
            "pinned": stats.pinned,
            "temp files": human_bytes(stats.temp_bytes),
            "reclaimable": f"{human_bytes(stats.reclaimable_bytes)} in packs, "
            "held by no file (`webmodels gc` frees them)",
        }
    )
    return 0


def cmd_verify(args: argparse.Namespace, ctx: CliContext, store: Store) -> int:
    bar = ProgressBar("verifying", total_bytes(store))
    try:
        report = verify_store(store, progress=bar.update)
    finally:
        bar.close()
    if ctx.json:
        print_json(
            {
                "checked": report.checked,
                "bytes_hashed": report.bytes_hashed,
                "problems": [
                    {
                        "sha256": p.digest.hex,
                        "path": str(p.path),
                        "problem": p.problem,
                        "quarantined_to": str(p.quarantined_to) if p.quarantined_to else None,
                    }
                    for p in report.problems
                ],
            }
        )
    else:
        print(f"checked {report.checked} files ({human_bytes(report.bytes_hashed)})")
        for p in report.problems:
            where = f"quarantined to {p.quarantined_to}" if p.quarantined_to else "no longer served"
            print(f"CORRUPT {p.digest.hex}: {p.problem} ({p.path}); {where}", file=sys.stderr)
        if not report.problems:
            print("all good")
    return 1 if report.problems else 0


def cmd_gc(args: argparse.Namespace, ctx: CliContext, store: Store) -> int:
    days = 0.0 if args.quarantine else args.quarantine_days
    if days is None:
        days = ctx.config.quarantine_days
    if days < 0:
        raise HostError("bad_request", "--quarantine-days must be 0 or more")
    plan = plan_gc(store, quarantine_age_s=days * 86400)
    result = None if args.dry_run else execute_gc(store, plan)
    if ctx.json:
        print_json(
            {
                "dry_run": args.dry_run,
                "planned": [i.to_json() for i in plan.items],
                "removed": [i.to_json() for i in result.removed] if result else [],
                "freed_bytes": result.freed_bytes if result else 0,
            }
        )
        return 0
    if not plan.items:
        print("nothing to collect")
        return 0
    rows = [(i.kind, human_bytes(i.size), i.reason, i.path or i.digest) for i in plan.items]
    print(format_table(["KIND", "SIZE", "REASON", "WHAT"], rows))
    if result is None:
        print(f"dry run: would free {human_bytes(plan.bytes)}")
    else:
        print(f"freed {human_bytes(result.freed_bytes)} ({len(result.skipped)} items in use again)")
    return 0
