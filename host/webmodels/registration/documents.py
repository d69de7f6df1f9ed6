"""What `install` writes: the native-host manifest and the launcher (pure).

The browser starts ``path`` from the manifest with the caller as its only
arguments (Chromium: ``chrome-extension://ID/``; Firefox: the manifest path and
the add-on id) and cannot add any of its own, so ``path`` is a small launcher
that runs ``python -m webmodels [--store DIR] serve -- "$@"``. The ``--`` is
there because Chrome on Windows adds ``--parent-window=<handle>``, which must
reach `serve` as an argument rather than be taken for one of its options.

``manifests/*.json.in`` hold the same documents as templates for packagers; a
test keeps them equal to `manifest_document`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from webmodels import NATIVE_HOST_NAME
from webmodels.config import Config
from webmodels.registration.locations import CHROMIUM_FAMILY
from webmodels.registration.receipt import LAUNCHER_NAMES

DESCRIPTION = "webmodels: the shared store of AI models for web pages"
LAUNCHER_MARKER = "written by `webmodels install`"
# Chromium refuses manifests over 1 MiB (native_messaging_host_manifest.cc);
# nothing we wrote is anywhere near that, so a bigger file is not ours.
MAX_MANIFEST_BYTES = 1 << 20


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def manifest_document(browser: str, *, host_path: Path, config: Config) -> dict[str, Any]:
    """The manifest `browser` reads: Chromium-family lists origins, Firefox add-on ids."""
    document: dict[str, Any] = {
        "name": NATIVE_HOST_NAME,
        "description": DESCRIPTION,
        "path": str(host_path),
        "type": "stdio",
    }
    if browser in CHROMIUM_FAMILY:
        document["allowed_origins"] = [extension_origin(i) for i in config.chromium_extension_ids]
    else:
        document["allowed_extensions"] = list(config.firefox_extension_ids)
    return document


def extension_origin(extension_id: str) -> str:
    return f"chrome-extension://{extension_id}/"


def render_manifest(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def names_our_host(content: bytes) -> bool:
    """True when `content` is a manifest for our host (whoever wrote it)."""
    if len(content) > MAX_MANIFEST_BYTES:
        return False
    try:
        document = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(document, dict) and document.get("name") == NATIVE_HOST_NAME


def launcher_name(platform: str) -> str:
    return LAUNCHER_NAMES[1] if platform == "win32" else LAUNCHER_NAMES[0]


def launcher_script(*, python: str, cli_args: Sequence[str], platform: str) -> bytes:
    """The launcher's bytes: a ``sh`` script, or a batch file on Windows."""
    if platform == "win32":
        return _batch_script(python, cli_args)
    command = shlex.join([python, "-m", "webmodels", *cli_args, "serve", "--"])
    lines = [
        "#!/bin/sh",
        f"# Starts the webmodels native-messaging host for a browser ({LAUNCHER_MARKER}).",
        f'exec {command} "$@"',
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _batch_script(python: str, cli_args: Sequence[str]) -> bytes:
    words = " ".join(_batch_word(w) for w in [python, "-m", "webmodels", *cli_args])
    lines = [
        "@echo off",
        f"rem Starts the webmodels native-messaging host for a browser ({LAUNCHER_MARKER}).",
        f"{words} serve -- %*",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _batch_word(word: str) -> str:
    if re.fullmatch(r"[-\w.]+", word):
        return word
    # Inside quotes cmd.exe takes & | ^ < > literally but still expands %VAR%;
    # %% is a literal percent sign. Windows paths cannot contain a quote.
    return '"' + word.replace("%", "%%") + '"'


def is_our_launcher(content: bytes, *, sha256: str) -> bool:
    return sha256_hex(content) == sha256 or LAUNCHER_MARKER.encode("utf-8") in content[:4096]


def launcher_cli_args(
    config: Config, *, default_home: Path, default_config_file: Path
) -> tuple[str, ...]:
    """Global flags the browser-started host needs to see what this command saw.

    The browser starts the host with its own environment, so a store chosen with
    ``--store`` or ``WEBMODELS_HOME`` (or another config file) is passed on.
    """
    args: list[str] = []
    if config.config_file is not None and config.config_file != default_config_file:
        args += ["--config", str(config.config_file.expanduser().absolute())]
    if config.home != default_home:
        args += ["--store", str(config.home)]
    return tuple(args)
