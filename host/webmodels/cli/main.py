"""Entry point of the `webmodels` command (and of ``python -m webmodels``)."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from webmodels import __version__
from webmodels.config import Config, Flags, load_config
from webmodels.errors import HostError
from webmodels.logs import setup_logging
from webmodels.permissions import restrict_umask


@dataclass(frozen=True, slots=True)
class CliContext:
    config: Config
    json: bool


# The commands in `--help` order, each in its own module, imported only when needed:
# the host a browser starts (`serve`) should not pay for the catalog and registration
# code before its first reply (issue 12).
COMMAND_MODULES = (
    "serve_cmd",
    "registration_cmd",
    "doctor_cmd",
    "import_cmd",
    "store_cmd",
    "derive_cmd",
    "fetch_cmd",
    "oci_cmd",
    "catalog_cmd",
    "commons_cmd",
    "share_cmd",
    "segments_cmd",
)
# Which module registers each command: a known command imports only its own module
# (`webmodels ls` need not load the registry client or the doctor's checks);
# `tests/cli/test_command_table.py` keeps this table equal to what the modules register.
COMMANDS = {
    "serve": "serve_cmd",
    "install": "registration_cmd",
    "uninstall": "registration_cmd",
    "doctor": "doctor_cmd",
    "import": "import_cmd",
    **dict.fromkeys(("ls", "rm", "pin", "unpin", "du", "verify", "gc"), "store_cmd"),
    "derive": "derive_cmd",
    "pull": "fetch_cmd",
    "jobs": "fetch_cmd",
    "push": "oci_cmd",
    **dict.fromkeys(("catalog", "resolve", "update"), "catalog_cmd"),
    "commons": "commons_cmd",
    **dict.fromkeys(("share", "unshare", "settings"), "share_cmd"),
    "store": "segments_cmd",
}
# Global options that take a value, to find the command word in argv.
_VALUED_OPTIONS = ("--store", "--config", "--preinstalled", "--log-level")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of the command given (its module's commands only), or the full one
    (no command, or one no module registers: then the usage lists them all)."""
    own = COMMANDS.get(command) if command is not None else None
    names = (own,) if own is not None else COMMAND_MODULES
    modules = [importlib.import_module(f"webmodels.cli.{name}") for name in names]
    parser = argparse.ArgumentParser(
        prog="webmodels",
        description="Manage the shared model store of the webmodels browser extension.",
    )
    parser.add_argument("--version", action="version", version=f"webmodels {__version__}")
    parser.add_argument(
        "--store", type=Path, metavar="DIR", help="data folder (env WEBMODELS_HOME)"
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="config file (TOML)")
    parser.add_argument(
        "--preinstalled",
        type=Path,
        action="append",
        metavar="DIR",
        help="folder of pre-installed models with a models.json (repeatable)",
    )
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in modules:
        module.register(sub)
    _accept_json_after(sub)
    return parser


def _accept_json_after(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Every command (and action) takes ``--json`` after its name too (``webmodels ls
    --json``); SUPPRESS keeps a ``--json`` given before the command when absent after."""
    for parser in set(sub.choices.values()):
        if "--json" not in parser._option_string_actions:
            parser.add_argument(
                "--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
            )
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _accept_json_after(action)


def command_of(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (the first argument that is no global option)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUED_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # here, where a closed pipe can still be handled
    except BrokenPipeError:
        _die_of_closed_pipe()


def _die_of_closed_pipe() -> NoReturn:
    """The reader of our output went away (``webmodels ls | head -c1``): end as Unix
    tools do, killed by SIGPIPE (exit status 141 in the shell), with no traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the exit flush finds no broken pipe
    sigpipe = getattr(signal, "SIGPIPE", None)
    if sigpipe is not None:
        signal.signal(sigpipe, signal.SIG_DFL)
        os.kill(os.getpid(), sigpipe)
    raise SystemExit(1)  # where there is no SIGPIPE (Windows)


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args_list = _browser_launch_argv(args_list)
    parser = build_parser(command_of(args_list))
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.command not in _BROWSER_FILES:
        restrict_umask()  # the store, its index and logs are the user's alone
    try:
        config = load_config(
            Flags(
                home=args.store,
                config_file=args.config,
                preinstalled=args.preinstalled,
                log_level=args.log_level,
            )
        )
        if args.command != "serve":  # serve sets up its own log (host.log)
            setup_logging(config, name="cli.log")
        code: int = args.func(args, CliContext(config=config, json=args.json))
        return code
    except HostError as exc:
        _report(exc, as_json=args.json)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# Commands that write the browsers' registration, whose files keep their own modes.
_BROWSER_FILES = ("install", "uninstall")


def _browser_launch_argv(argv: list[str]) -> list[str]:
    """Browsers start the host with the caller's origin as the first argument
    (``chrome-extension://ID/``; Firefox passes the manifest path and the add-on id).
    The installed launcher already adds ``serve``; this keeps a bare launch working."""
    if argv and (argv[0].startswith("chrome-extension://") or argv[0].endswith(".json")):
        return ["serve", *argv]
    return argv


def _report(exc: HostError, *, as_json: bool) -> None:
    if as_json:
        import json

        print(json.dumps({"ok": False, "error": exc.to_wire()}))
    else:
        print(f"webmodels: error [{exc.code}]: {exc.message}", file=sys.stderr)
