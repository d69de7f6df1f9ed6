"""``webmodels commons ls|show [KEY]|add FILE|rm KEY|verify FILE``: the signed lists of
common models, one per trusted key (``update FILE`` is ``add FILE``)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from webmodels.cli.main import CliContext
from webmodels.cli.output import format_table, human_bytes, print_json
from webmodels.commons import keeper
from webmodels.commons.gate import CommonsGate, ProbeBudget
from webmodels.commons.lists import CommonsList, check_succession, read_list
from webmodels.commons.status import ListStatus, find, statuses
from webmodels.commons.trust import Trust
from webmodels.errors import HostError
from webmodels.store import Store


def register(sub: Any) -> None:
    text = "the signed lists of common models (visible to every site), one per trusted key"
    parser: argparse.ArgumentParser = sub.add_parser("commons", help=text, description=text)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    _action(actions, "ls", "one line per installed list: in force, or why not", cmd_ls)
    show = _action(actions, "show", "the entries of the lists in force, or of KEY's", cmd_show)
    show.add_argument("key", nargs="?", metavar="KEY", help="key id (or its start)")
    for name in ("add", "update"):
        add = _action(actions, name, "install a signed list (new, or newer for its key)", cmd_add)
        add.add_argument("file", type=Path, metavar="FILE")
    remove = _action(actions, "rm", "remove KEY's list (trusting KEY is the config's)", cmd_rm)
    remove.add_argument("key", metavar="KEY", help="key id (or its start)")
    verify = _action(actions, "verify", "check a signed list without installing it", cmd_verify)
    verify.add_argument("file", type=Path, metavar="FILE")


def _action(actions: Any, name: str, text: str, func: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(name, help=text, description=text)
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts"
    )
    parser.set_defaults(func=func)
    return parser


def cmd_ls(args: argparse.Namespace, ctx: CliContext) -> int:
    found = _statuses(ctx)
    if ctx.json:
        print_json({"ok": True, "lists": [s.to_json() for s in found]})
    elif not found:
        print("no commons list installed")
    else:
        rows = [
            (
                s.listed.key_id,
                _signer(s),
                s.listed.version,
                _day(s),
                len(s.listed.models),
                _state(s),
            )
            for s in found
        ]
        print(format_table(["key", "trust", "version", "expires", "entries", "status"], rows))
    return 0


def cmd_show(args: argparse.Namespace, ctx: CliContext) -> int:
    found = _statuses(ctx)
    shown = [find(found, args.key)] if args.key else [s for s in found if s.in_force]
    if ctx.json:
        print_json({"ok": True, "lists": [s.to_json(models=True) for s in shown]})
        return 0
    if not shown:
        print("no commons list in force")
    for n, status in enumerate(shown):
        print(("\n" if n else "") + _heading(status))
        rows = [
            (m.digest.hex[:16], human_bytes(m.size), m.version, m.name)
            for m in status.listed.models
        ]
        print(format_table(["sha256", "size", "version", "name"], rows))
    return 0


def cmd_add(args: argparse.Namespace, ctx: CliContext) -> int:
    listed = _verified(args.file, ctx)
    with Store.open(ctx.config) as store:
        changed = keeper.install(store.index, listed)
    _print_list(ctx, {"updated": changed}, listed)
    return 0


def cmd_rm(args: argparse.Namespace, ctx: CliContext) -> int:
    with Store.open(ctx.config) as store:
        status = find(statuses(store.index, _trust(ctx), now=_now()), args.key)
        keeper.remove(store.index, status.listed.key_id)
    note = (
        '; the project\'s list returns at the next start unless commons_keys leaves out "project"'
        if status.project
        else ""
    )
    if ctx.json:
        print_json({"ok": True, "removed": status.listed.key_id, "project": status.project})
    else:
        print(f"removed the list of key {status.listed.key_id}{note}")
    return 0


def cmd_verify(args: argparse.Namespace, ctx: CliContext) -> int:
    listed = _verified(args.file, ctx)
    with Store.open(ctx.config) as store:
        installed = keeper.installed_documents(store.index).get(listed.key_id)
        check_succession(listed, read_list(installed) if installed is not None else None)
    _print_list(ctx, {"valid": True}, listed)
    return 0


def _statuses(ctx: CliContext) -> list[ListStatus]:
    trust = _trust(ctx)
    with Store.open(ctx.config) as store:
        CommonsGate(store, trust, ProbeBudget()).install_shipped()  # as a host start does
        return statuses(store.index, trust, now=_now())


def _verified(path: Path, ctx: CliContext) -> CommonsList:
    try:
        document = path.read_bytes()
    except OSError as exc:
        raise HostError("not_found", f"cannot read {path}: {exc.strerror}") from exc
    return _trust(ctx).verify(document, now=_now())


def _print_list(ctx: CliContext, status: dict[str, Any], listed: CommonsList) -> None:
    if ctx.json:
        print_json({"ok": True, **status, "list": listed.summary(_now())})
        return
    done = "installed" if status.get("updated") else "already installed"
    word = "valid" if "valid" in status else done
    print(
        f"{word}: list of key {listed.key_id}, version {listed.version}, "
        f"{len(listed.models)} entries, expires {listed.expires:%Y-%m-%d}"
    )


def _heading(status: ListStatus) -> str:
    listed = status.listed
    return (
        f"list of key {listed.key_id}{' (project)' if status.project else ''} · version "
        f"{listed.version} · expires {_day(status)} · {_state(status)}"
    )


def _signer(status: ListStatus) -> str:
    return "project" if status.project else "configured" if status.trusted else "untrusted"


def _state(status: ListStatus) -> str:
    return "in force" if status.in_force else f"not in force: {status.problem}"


def _day(status: ListStatus) -> str:
    return f"{status.listed.expires:%Y-%m-%d}"


def _trust(ctx: CliContext) -> Trust:
    return Trust.from_config(ctx.config.commons_keys)


def _now() -> datetime:
    return datetime.now(UTC)
