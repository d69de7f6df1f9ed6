"""The extension's own unit tests (extension/test/*.test.js, Node's built-in test
runner), run as part of the Python suite. Skipped without Node, except in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_extension_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is missing (CI=true: the extension's unit tests must run)")
        pytest.skip("node is missing: install Node.js 20 or newer to run extension/test/")
    done = subprocess.run(
        [node, "--test", "extension/test/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (
        f"node --test extension/test/ failed:\n{done.stdout}\n{done.stderr}"
    )
