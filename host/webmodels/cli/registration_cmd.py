"""`webmodels install` and `webmodels uninstall`: register the native-messaging
host with browsers, and take it away again."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from webmodels import NATIVE_HOST_NAME
from webmodels.config import APP_NAME, Config, default_config_file
from webmodels.errors import HostError
from webmodels.registration import (
    BROWSERS,
    InstallPlan,
    UninstallPlan,
    execute_install,
    execute_uninstall,
    load_receipt,
    parse_selection,
    plan_install,
    plan_uninstall,
    survey,
    system_registry,
)
from webmodels.registration.documents import launcher_cli_args
from webmodels.registration.locations import CHROMIUM_FAMILY, System, registry_display
from webmodels.registration.plans import GONE, IN_USE, KEEP, REMOVE
from webmodels.registration.receipt import receipt_path
from webmodels.registration.system_wide import (
    SYSTEM_BROWSERS,
    plan_system_install,
    system_receipt_path,
)

from .output import format_table, print_json

if TYPE_CHECKING:
    from webmodels.cli.main import CliContext

HEADERS = ("browser", "manifest", "action")


def register(sub: Any) -> None:
    install = sub.add_parser(
        "install",
        help="register the native-messaging host with browsers",
        description=f"Write the {NATIVE_HOST_NAME} manifest where each browser looks for it, "
        "and a launcher that starts `webmodels serve`. Undo with `webmodels uninstall`.",
    )
    _add_selection_flags(install)
    install.set_defaults(func=run_install)
    uninstall = sub.add_parser(
        "uninstall",
        help="remove what `webmodels install` wrote",
        description="Remove the manifests, launcher and folders that `webmodels install` "
        "recorded, leaving files changed since then alone.",
    )
    _add_selection_flags(uninstall)
    uninstall.set_defaults(func=run_uninstall)


def _add_selection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--browser",
        action="append",
        metavar="NAME",
        help=f"{', '.join(BROWSERS)} or all (repeatable; default: all)",
    )
    parser.add_argument(
        "--user-data-dir",
        type=Path,
        metavar="DIR",
        help="a Chromium-family profile folder started with --user-data-dir=DIR "
        "(writes DIR/NativeMessagingHosts/)",
    )
    parser.add_argument("--dry-run", action="store_true", help="show the plan; change nothing")
    parser.add_argument(
        "--system",
        action="store_true",
        help="for every user of this machine: the browsers' system-wide folders "
        "(/etc/opt/chrome/native-messaging-hosts, ...; needs root)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="with --system: write under DIR instead of / (a package image)",
    )


def run_install(args: argparse.Namespace, ctx: CliContext) -> int:
    if _system_wide(args):
        plan = plan_system_install(
            ctx.config,
            browsers=_expand(args.browser) if args.browser else SYSTEM_BROWSERS,
            system=System.current(),
            python=sys.executable,
            root=args.root,
        )
    else:
        plan = plan_install(
            ctx.config,
            selection=parse_selection(args.browser, args.user_data_dir),
            system=System.current(),
            python=sys.executable,
            launcher_args=default_launcher_args(ctx.config),
        )
    created: tuple[Path, ...] = ()
    if not args.dry_run:
        created = execute_install(plan, registry=system_registry()).created_dirs
    if ctx.json:
        print_json({"ok": True, "dry_run": args.dry_run, **plan.to_json(), "created_dirs": created})
    else:
        undo = "webmodels uninstall --system" if args.system else "webmodels uninstall"
        print(_install_text(plan, created=created, dry_run=args.dry_run, undo=undo))
    return 0


def run_uninstall(args: argparse.Namespace, ctx: CliContext) -> int:
    selection = parse_selection(args.browser, args.user_data_dir, profile_default=CHROMIUM_FAMILY)
    if _system_wide(args):
        path = system_receipt_path(System.current(), args.root)
    else:
        path = receipt_path(ctx.config.home)
    receipt = load_receipt(path)
    registry = system_registry()
    plan = plan_uninstall(
        receipt, selection=selection, survey=survey(receipt, registry=registry), receipt_path=path
    )
    removed_dirs: tuple[Path, ...] = ()
    removed_keys: tuple[str, ...] = ()
    if not args.dry_run:
        result = execute_uninstall(plan, registry=registry)
        removed_dirs, removed_keys = result.removed_dirs, result.removed_registry_keys
    if ctx.json:
        extra = {"removed_dirs": removed_dirs, "removed_registry_keys": removed_keys}
        print_json({"ok": True, "dry_run": args.dry_run, **plan.to_json(), **extra})
    else:
        print(_uninstall_text(plan, removed_dirs=removed_dirs, dry_run=args.dry_run))
    return 0


def _system_wide(args: argparse.Namespace) -> bool:
    if args.root is not None and not args.system:
        raise HostError("bad_request", "--root goes with --system", flag="--root")
    if args.system and args.user_data_dir is not None:
        raise HostError(
            "bad_request", "--user-data-dir is one user's profile: drop it", flag="--system"
        )
    return bool(args.system)


def _expand(browsers: Sequence[str]) -> tuple[str, ...]:
    return parse_selection(browsers, None).browsers


def default_launcher_args(config: Config) -> tuple[str, ...]:
    """Flags the launcher passes on: ``--store``/``--config`` when not the defaults."""
    default_home = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return launcher_cli_args(
        config,
        default_home=default_home.expanduser().absolute(),
        default_config_file=default_config_file(),
    )


def _install_text(plan: InstallPlan, *, created: Sequence[Path], dry_run: bool, undo: str) -> str:
    write, setting = ("would write", "would set") if dry_run else ("written", "set")
    rows: list[tuple[str, str, str]] = []
    for registration in plan.registrations:
        rows.append((registration.target.browser, str(registration.manifest.path), write))
        if registration.target.registry_key:
            rows.append(("", registry_display(registration.target.registry_key), setting))
    rows.append(("launcher", str(plan.launcher.path), write))
    if dry_run:
        rows += [("folder", str(d), "create if missing") for d in plan.dirs]
    else:
        rows += [("folder", str(d), "created") for d in created]
    browsers = len(plan.registrations)
    tail = (
        "Dry run: nothing was changed."
        if dry_run
        else f"Registered {NATIVE_HOST_NAME} with {browsers} browser(s); undo with `{undo}`."
    )
    return format_table(HEADERS, rows) + "\n\n" + tail


_UNINSTALL_WORDS = {
    REMOVE: ("would remove", "removed"),
    KEEP: ("would keep: changed since install", "kept: changed since install"),
    GONE: ("already gone", "already gone"),
    IN_USE: ("would keep: other browsers use it", "kept: other browsers use it"),
}


def _uninstall_text(plan: UninstallPlan, *, removed_dirs: Sequence[Path], dry_run: bool) -> str:
    def word(action: str) -> str:
        return _UNINSTALL_WORDS[action][0 if dry_run else 1]

    launcher = plan.launcher
    if not plan.removals and (launcher is None or launcher.action == IN_USE):
        names = ", ".join(plan.not_installed)
        return f"Nothing to uninstall: no registration recorded for {names} in {plan.receipt_path}."
    rows: list[tuple[str, str, str]] = []
    for removal in plan.removals:
        record = removal.record
        rows.append((record.browser, str(record.manifest.path), word(removal.action)))
        if removal.delete_registry_key and record.registry_key:
            rows.append(("", registry_display(record.registry_key), word(REMOVE)))
    if launcher is not None:
        rows.append(("launcher", str(launcher.record.path), word(launcher.action)))
    rows += [("folder", str(d), "removed") for d in removed_dirs]
    if dry_run:
        tail = (
            f"Dry run: nothing was changed. The {len(plan.dirs)} folder(s) that install "
            "created are removed once empty."
        )
    else:
        tail = "Done."
    return format_table(HEADERS, rows) + "\n\n" + tail
