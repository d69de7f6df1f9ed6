"""``webmodels catalog add|ls|show|rm``, ``webmodels resolve NAME@RANGE`` and
``webmodels update``: models by name and version (docs/design.md#names-versions-and-sources)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from webmodels.catalogs import keeper
from webmodels.catalogs.documents import Catalog, check_succession, verify_catalog
from webmodels.catalogs.remote import read_source, source_label
from webmodels.cli.main import CliContext
from webmodels.cli.output import format_table, human_bytes, print_json
from webmodels.errors import HostError
from webmodels.naming.resolve import SUBSTITUTE, Candidate, Choice, NameQuery
from webmodels.naming.sources import NameSources
from webmodels.naming.versions import ModelSpec, VersionError
from webmodels.signing import parse_public_key
from webmodels.store import Store
from webmodels.store.records import ModelRecord


def register(sub: Any) -> None:
    text = "signed catalogs of models by name and version"
    parser: argparse.ArgumentParser = sub.add_parser("catalog", help=text, description=text)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="trust a catalog (a file or an http(s) URL)")
    add.add_argument("source", metavar="FILE|URL")
    add.add_argument(
        "--key", required=True, help="its public key: base64 text, or a file holding it"
    )
    add.set_defaults(func=cmd_add)
    ls = actions.add_parser("ls", help="the catalogs configured")
    ls.set_defaults(func=cmd_ls)
    show = actions.add_parser("show", help="the models one catalog lists")
    show.add_argument("name")
    show.set_defaults(func=cmd_show)
    rm = actions.add_parser("rm", help="stop trusting a catalog")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_rm)
    resolve = sub.add_parser(
        "resolve",
        help="which model a name and version range gives, and why",
        description="Explain the choice a page asking for NAME@RANGE would get, "
        "as seen by you (every stored and pre-installed model is at hand).",
    )
    resolve.add_argument("spec", metavar="PUBLISHER/MODEL@RANGE")
    resolve.add_argument("--substitute", choices=SUBSTITUTE, default="none")
    resolve.set_defaults(func=cmd_resolve)
    update = sub.add_parser(
        "update",
        help="refresh catalogs; fetch newer versions of models in use, in the background",
        description="Re-read every catalog from where it was added, then download in the "
        "background the newest version within the range each site asked for, when the "
        "store does not hold it yet.",
    )
    update.add_argument("--check", action="store_true", help="only say what would change")
    update.set_defaults(func=cmd_update)


def _key_text(value: str) -> str:
    path = Path(value)
    if len(value) < 4096 and path.is_file():
        return path.read_text(encoding="ascii").strip()
    return value


def cmd_add(args: argparse.Namespace, ctx: CliContext) -> int:
    document = read_source(args.source)
    with Store.open(ctx.config) as store:
        catalog, changed = keeper.add(
            store.index, document, key=_key_text(args.key), source=source_label(args.source)
        )
    if ctx.json:
        print_json({"catalog": catalog.summary(_now()), "changed": changed})
    else:
        state = "added" if changed else "already installed"
        print(f"{state}: {catalog.name} version {catalog.version}, {len(catalog.entries)} models")
    return 0


def cmd_ls(args: argparse.Namespace, ctx: CliContext) -> int:
    with Store.open(ctx.config) as store:
        found = keeper.installed(store.index)
    now = _now()
    if ctx.json:
        print_json([{**i.catalog.summary(now), "source": i.source} for i in found])
        return 0
    if not found:
        print("no catalogs (add one with: webmodels catalog add FILE|URL --key KEY)")
        return 0
    rows = [
        (
            i.catalog.name,
            i.catalog.version,
            len(i.catalog.entries),
            i.catalog.summary(now)["expires"] + (" (expired)" if i.catalog.expired(now) else ""),
            i.catalog.key_id,
            i.source or "-",
        )
        for i in found
    ]
    print(format_table(["NAME", "VERSION", "MODELS", "EXPIRES", "KEY", "SOURCE"], rows))
    return 0


def cmd_show(args: argparse.Namespace, ctx: CliContext) -> int:
    with Store.open(ctx.config) as store:
        found = [i for i in keeper.installed(store.index) if i.catalog.name == args.name]
    if not found:
        raise HostError("not_found", f"no catalog named {args.name} (see `webmodels catalog ls`)")
    entries = found[0].catalog.entries
    if ctx.json:
        print_json([e.to_json() for e in entries])
        return 0
    rows = [
        (str(e.name), str(e.version), e.digest.short, human_bytes(e.size), e.task or "-")
        for e in entries
    ]
    print(format_table(["NAME", "VERSION", "SHA256", "SIZE", "TASK"], rows))
    return 0


def cmd_rm(args: argparse.Namespace, ctx: CliContext) -> int:
    with Store.open(ctx.config) as store:
        removed = keeper.remove(store.index, args.name)
    if not removed:
        raise HostError("not_found", f"no catalog named {args.name}")
    print_json({"removed": args.name}) if ctx.json else print(f"removed catalog {args.name}")
    return 0


def parse_spec(text: str) -> ModelSpec:
    try:
        return ModelSpec.parse(text)
    except VersionError as exc:
        raise HostError("bad_request", f"{text!r} is not PUBLISHER/MODEL@RANGE: {exc}") from exc


def resolve_as_user(store: Store, query: NameQuery) -> Choice:
    """The choice with the user's view: every servable model is at hand."""
    sources = NameSources(store)

    def at_hand(digest: Any) -> bool:
        record = store.get(digest)
        return record is not None and record.servable

    choice = sources.resolve(query, visible=at_hand)
    if choice is None:
        raise HostError(
            "not_found",
            f"no catalog or pre-installed model has {query.name} in range {query.range.text!r}",
        )
    return choice


def cmd_resolve(args: argparse.Namespace, ctx: CliContext) -> int:
    spec = parse_spec(args.spec)
    with Store.open(ctx.config) as store:
        choice = resolve_as_user(store, NameQuery(spec.name, spec.range, args.substitute))
    given = choice.candidate
    if ctx.json:
        print_json(
            {
                "name": str(given.name),
                "version": str(given.version),
                "sha256": given.digest.hex,
                "source": given.source,
                "at_hand": choice.visible,
                "substituted": choice.substituted,
                "steps": list(choice.steps),
            }
        )
        return 0
    for step in choice.steps:
        print(f"  {step}")
    where = "at hand" if choice.visible else "to download"
    extra = " (substituted)" if choice.substituted else ""
    print(f"{spec} -> {given.name}@{given.version}, {where}{extra}")
    return 0


def cmd_update(args: argparse.Namespace, ctx: CliContext) -> int:
    from webmodels.cli.fetch_cmd import start_named_downloads  # the pull machinery

    report: dict[str, Any] = {"catalogs": [], "downloads": []}
    with Store.open(ctx.config) as store:
        fresh: dict[str, Catalog] = {}
        for item in keeper.installed(store.index):
            line, catalog = _refresh(store, item, check=args.check)
            report["catalogs"].append(line)
            if catalog is not None:
                fresh[catalog.name] = catalog
        planned = _plan_updates(store, fresh)
        report["downloads"] = [
            {
                "name": str(c.name),
                "version": str(c.version),
                "sha256": c.digest.hex,
                "sites": sum(1 for s in sites if s),  # "" is the user's own pull
                "user": "" in sites,
            }
            for c, sites in planned.values()
        ]
        if not args.check and planned:
            start_named_downloads(store, ctx, planned)
    if ctx.json:
        print_json(report)
        return 0
    for line in report["catalogs"]:
        print(f"catalog {line['name']}: {line['state']}")
    if not report["downloads"]:
        print("every model in use is the newest in its range")
    verb = "would download" if args.check else "downloading in the background"
    for line in report["downloads"]:
        print(f"{verb}: {line['name']}@{line['version']} for {_asked_by(line)}")
    return 0


def _asked_by(line: Mapping[str, Any]) -> str:
    """Who asked for the range: "you (webmodels pull)", "2 sites", or both."""
    n = int(line["sites"])
    who = ["you (webmodels pull)"] if line["user"] else []
    if n:
        who.append(f"{n} site" + ("" if n == 1 else "s"))
    return " and ".join(who)


def _refresh(
    store: Store, item: keeper.Installed, *, check: bool
) -> tuple[dict[str, Any], Catalog | None]:
    """Re-read a catalog from its source: installed, or with --check only verified."""
    name = item.catalog.name
    if item.source is None:
        return {"name": name, "state": "no source to re-read"}, None
    try:
        document = read_source(item.source)
        if check:
            catalog = verify_catalog(document, parse_public_key(item.key), now=_now())
            check_succession(catalog, item.catalog)
            changed = catalog.payload != item.catalog.payload
        else:
            catalog, changed = keeper.add(store.index, document, key=item.key, source=None)
    except HostError as exc:
        return {"name": name, "state": f"kept version {item.catalog.version}: {exc.message}"}, None
    verb = "would update" if check else "updated"
    state = f"{verb} to version {catalog.version}" if changed else "up to date"
    return {"name": name, "state": state}, catalog


def _plan_updates(
    store: Store, fresh: Mapping[str, Catalog]
) -> dict[str, tuple[Candidate, list[str]]]:
    """The newest version in each recorded range that a site asking for it does not
    hold yet (by sha256), with the partitions that asked ("" for the user). `fresh`
    catalogs stand in for the installed ones of their name (`--check`)."""
    sources = NameSources(store)
    catalogs = {c.name: c for c in sources.catalogs()} | dict(fresh)
    candidates = [
        Candidate.from_entry(e, c.name) for c in catalogs.values() for e in c.entries if e.urls
    ]
    planned: dict[str, tuple[Candidate, list[str]]] = {}
    for asked in keeper.requests(store.index):
        try:
            spec = parse_spec(f"{asked.name}@{asked.range}")
        except HostError:
            continue
        in_range = [c for c in candidates if c.name == spec.name and spec.range.matches(c.version)]
        if not in_range:
            continue
        newest = max(in_range, key=lambda c: c.version.key())
        record = store.get(newest.digest)
        if record is not None and record.servable and _holds(record, asked.partition):
            continue
        planned.setdefault(newest.digest.hex, (newest, []))[1].append(asked.partition)
    return planned


def _holds(record: ModelRecord, partition: str) -> bool:
    """The user ("") holds every servable model; a site the ones it obtained."""
    return not partition or partition in record.sites or record.preinstalled_path is not None


def _now() -> datetime:
    return datetime.now(UTC)
