"""The demo log says where each site's model came from in a user's words: a common
model a second site gets from the store is "already stored by another site (common
model) — no download", not the stored copy's raw `source` ("downloaded")."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def demo() -> ModuleType:
    scripts = str(ROOT / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)  # demo.py's own modules (demo_browser, demo_output, …)
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("demo", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


INFO = {"sha256": "ab" * 32, "size": 1, "format": "onnx", "inputs": [], "outputs": []}


def test_a_common_model_from_the_store_is_explained() -> None:
    lines = demo().describe_info({**INFO, "source": "downloaded"}, downloaded_now=False)
    assert "source: already stored by another site (common model) — no download" in lines
    assert not any("source downloaded" in line for line in lines)


def test_a_fresh_download_and_a_preinstalled_model_are_explained() -> None:
    words = demo().source_words
    assert words({"source": "downloaded"}, downloaded_now=True) == "downloaded now by this site"
    preinstalled = words({"source": "preinstalled"}, downloaded_now=False)
    assert preinstalled == "pre-installed on this computer — no download"
