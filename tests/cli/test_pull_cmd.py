"""`webmodels pull URL` as a user runs it: URLs it cannot fetch, and what it says about
a file named .onnx that is no ONNX model. Files come from a local HTTP server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from support.host import run_cli
from support.httpserver import ModelServer
from support.models import tiny_model


@pytest.mark.parametrize("url", ["ftp://x/y", "htp://127.0.0.1/m.onnx", "file:///m.onnx"])
def test_a_url_of_another_scheme_is_refused_as_such(home: Path, url: str) -> None:
    result = run_cli(home, "pull", url, "--sha256", "0" * 64, check=False)
    assert result.returncode == 1
    scheme = url.split(":")[0]
    assert f"the scheme {scheme}:// is not supported" in result.stderr
    assert "publisher/model" not in result.stderr


def test_a_truncated_onnx_is_named_for_what_it_is_or_refused_with_format_onnx(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    whole = tiny_model(tmp_path / "m.onnx", weight_bytes=4096).read_bytes()
    cut = whole[: len(whole) // 2]
    sha = hashlib.sha256(cut).hexdigest()
    url = model_server.add("/cut.onnx", cut)

    refused = run_cli(home, "pull", url, "--sha256", sha, "--format", "onnx", check=False)
    assert refused.returncode == 1
    assert "error [model_invalid]" in refused.stderr and "not a valid ONNX model" in refused.stderr
    assert json.loads(run_cli(home, "ls", "--json").stdout) == []  # nothing kept

    pulled = json.loads(run_cli(home, "pull", url, "--sha256", sha, "--json").stdout)
    assert pulled["result"] == "downloaded"
    assert pulled["note"].startswith("not a valid ONNX model (")
    assert pulled["note"].endswith("); stored as an opaque file")
    again = run_cli(home, "pull", url, "--sha256", sha).stdout
    assert "already stored" in again and "stored as an opaque file" in again
