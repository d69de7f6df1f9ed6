"""What a browser-started host loads before it can answer: no heavy library.

A browser starts a host per connection, and the popup waits for its `hello` reply; the
interpreter's imports are most of that wait (issue 13: host start < 300 ms with 10,000
stored files). This pins what matters without timing: a host that is asked `hello`
and then closed never imports the libraries only downloads, the CLI, ONNX inspection
or inference need. They load when a request needs them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import webmodels
from support.host import HEADER, frame, webmodels_env

ROOT = Path(__file__).resolve().parents[1]

# Top-level packages the serve path must not import to answer `hello`.
HEAVY = ("requests", "urllib3", "rich", "onnx", "onnxruntime", "numpy", "fastcdc")
# Modules it needs no more than those: the CLI's tables and progress bars, the SSH key
# code (and bcrypt) behind `cryptography`'s serialization, HTTP (with ssl and email),
# and a TOML parser where there is no config file.
UNNEEDED = (
    "webmodels.cli.output",
    "cryptography.hazmat.primitives.serialization.ssh",
    "http.client",
    "tomllib",
)


def imported_modules(importtime_log: str) -> set[str]:
    """Module names from ``python -X importtime`` output."""
    names = set()
    for line in importtime_log.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                names.add(name)
    return names


def hello_session(home: Path) -> tuple[dict[str, object], set[str]]:
    """Start `webmodels serve` as a browser would, ask `hello`, close its stdin; return
    the reply and every module the host process imported in its whole life."""
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "webmodels", "serve", "--trusted-stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=webmodels_env(home),
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    errors: list[bytes] = []
    drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()))  # type: ignore[union-attr]
    drain.start()  # a full stderr pipe would stall the host before its reply
    proc.stdin.write(frame({"id": 1, "method": "hello", "params": {}}))
    proc.stdin.flush()
    (length,) = HEADER.unpack(proc.stdout.read(HEADER.size))
    reply = json.loads(proc.stdout.read(length))
    proc.stdin.close()  # the browser closes the port: the host ends
    assert proc.wait(timeout=60) == 0
    drain.join(timeout=60)
    return reply, imported_modules(errors[0].decode(errors="replace"))


def test_hello_needs_no_heavy_library(tmp_path: Path) -> None:
    reply, modules = hello_session(tmp_path / "home")
    assert reply["ok"] is True
    assert reply["result"]["host_version"] == webmodels.__version__
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert loaded == [], f"a host that only answered hello imported {loaded[:10]}"
    assert sorted(modules.intersection(UNNEEDED)) == []


def test_version_is_pyprojects() -> None:
    """The version is written in the package (reading it from the installed
    distribution costs the start); it must still be the one the project releases."""
    with (ROOT / "pyproject.toml").open("rb") as fh:
        assert webmodels.__version__ == tomllib.load(fh)["project"]["version"]
