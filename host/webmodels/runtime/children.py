"""The environment of the host's Python children (the provider probe, the runtime
worker): they must import this very copy of webmodels, installed or not."""

from __future__ import annotations

import os
from pathlib import Path


def child_env() -> dict[str, str]:
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    parts = [package_root, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    env["PYTHONIOENCODING"] = "utf-8"
    return env
