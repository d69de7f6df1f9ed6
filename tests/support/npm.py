"""Published npm packages for the browser tests, fetched by npm at test time into
.cache/npm/ (never vendored into the repository).

``npm pack`` fetches exactly the published tarball of a pinned version, which the
test unpacks: the files the tests load (WebLLM's bundled lib/index.js, Transformers.js'
dependency-free cache module, webidl2's bundled parser) need none of the package's
dependencies, so nothing else is installed and no install scripts run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from support.models import CACHE


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the end-to-end tests must run)")
    pytest.skip(reason)


def npm_package(spec: str) -> Path:
    """The unpacked folder of ``spec`` (``name@version``), fetched once."""
    folder = CACHE / "npm" / "packed" / spec.replace("/", "+").replace("@", "-").lstrip("-")
    unpacked = folder / "package"
    if (unpacked / "package.json").is_file():
        return unpacked
    npm = shutil.which("npm")
    if npm is None:
        skip_or_fail(f"npm is missing: it fetches {spec} for this test")
    staging = folder / f"unpacking-{os.getpid()}"  # per process; renamed into place whole
    staging.mkdir(parents=True, exist_ok=True)
    try:
        command = [str(npm), "pack", "--silent", "--pack-destination", str(staging), spec]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            skip_or_fail(f"npm pack {spec} failed: {done.stderr.strip()[-500:]}")
        tarball = staging / done.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as archive:
            archive.extractall(staging, filter="data")
        with contextlib.suppress(OSError):  # another process got there first
            (staging / "package").rename(unpacked)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return unpacked
