"""The CLI imports only the module of the command it runs (cli/main.py COMMANDS): the
table must name every command the modules register, and a plain `webmodels ls` must
not load the registry client, the HTTP stack or the doctor's checks."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

from support.host import webmodels_env
from webmodels.cli.main import COMMAND_MODULES, COMMANDS


def test_the_table_names_every_command_with_the_module_that_registers_it() -> None:
    registered = {}
    for name in COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers(dest="command")
        importlib.import_module(f"webmodels.cli.{name}").register(sub)
        registered |= dict.fromkeys(sub.choices, name)
    assert registered == COMMANDS


def test_ls_loads_no_registry_client_http_stack_or_doctor(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "webmodels", "ls"],
        env=webmodels_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()}
    heavy = {"webmodels.oci.client", "requests", "webmodels.doctor", "webmodels.serve"}
    assert not heavy & imported, sorted(heavy & imported)
    assert "no models" in run.stdout
