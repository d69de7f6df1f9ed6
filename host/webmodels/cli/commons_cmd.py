"""``webmodels commons show|verify FILE|update FILE``: the signed list of common models."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from webmodels.cli.main import CliContext
from webmodels.cli.output import format_table, human_bytes, print_json, print_kv
from webmodels.commons import keeper
from webmodels.commons.gate import CommonsGate, ProbeBudget, trusted_keys
from webmodels.commons.lists import CommonsList, check_succession, verify_list
from webmodels.errors import HostError
from webmodels.store import Store


def register(sub: Any) -> None:
    text = "the signed list of common models (visible to every site)"
    parser: argparse.ArgumentParser = sub.add_parser("commons", help=text, description=text)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="the list in force")
    show.set_defaults(func=cmd_show)
    verify = actions.add_parser("verify", help="check a signed list without installing it")
    verify.add_argument("file", type=Path, metavar="FILE")
    verify.set_defaults(func=cmd_verify)
    update = actions.add_parser("update", help="install a newer signed list")
    update.add_argument("file", type=Path, metavar="FILE")
    update.set_defaults(func=cmd_update)


def cmd_show(args: argparse.Namespace, ctx: CliContext) -> int:
    with Store.open(ctx.config) as store:
        keys = trusted_keys(ctx.config.commons_keys)
        CommonsGate(store, keys, ProbeBudget()).install_shipped()  # as a host start does
        listed = keeper.installed(store.index)
    if listed is None:
        _print(ctx, {"installed": False}, None)
        return 0
    try:  # what a host would do: re-check with the keys configured now
        verify_list(listed.document, trusted_keys(ctx.config.commons_keys), now=_now())
        in_force, why = True, None
    except HostError as exc:
        in_force, why = False, exc.message
    _print(ctx, {"installed": True, "in_force": in_force, "problem": why}, listed)
    return 0


def cmd_verify(args: argparse.Namespace, ctx: CliContext) -> int:
    listed = _verified(args.file, ctx)
    with Store.open(ctx.config) as store:
        check_succession(listed, keeper.installed(store.index))
    _print(ctx, {"valid": True}, listed)
    return 0


def cmd_update(args: argparse.Namespace, ctx: CliContext) -> int:
    listed = _verified(args.file, ctx)
    with Store.open(ctx.config) as store:
        changed = keeper.install(store.index, listed)
    _print(ctx, {"updated": changed}, listed)
    return 0


def _verified(path: Path, ctx: CliContext) -> CommonsList:
    try:
        document = path.read_bytes()
    except OSError as exc:
        raise HostError("not_found", f"cannot read {path}: {exc.strerror}") from exc
    return verify_list(document, trusted_keys(ctx.config.commons_keys), now=_now())


def _print(ctx: CliContext, status: dict[str, Any], listed: CommonsList | None) -> None:
    summary = listed.summary(_now()) if listed is not None else None
    if ctx.json:
        print_json({"ok": True, **status, "list": summary})
        return
    print_kv({k: v for k, v in status.items() if v is not None})
    if summary is None:
        return
    print_kv({k: summary[k] for k in ("version", "expires", "expired", "key_id")})
    rows = [
        (m["sha256"][:16], m["name"], m["version"], human_bytes(m["size"]))
        for m in summary["models"]
    ]
    print(format_table(["sha256", "name", "version", "size"], rows))


def _now() -> datetime:
    return datetime.now(UTC)
