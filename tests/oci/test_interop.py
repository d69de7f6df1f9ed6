"""Interop with an independent OCI client, the `oras` Python SDK: what webmodels
pushes, `oras pull` reads; what `oras push` writes, webmodels pulls — byte-identical."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from support.held import read_held
from support.host import run_cli
from support.registry import Registry

oras_client = pytest.importorskip("oras.client")


def test_webmodels_push_is_read_by_oras_pull(registry: Registry, tmp_path: Path) -> None:
    data = os.urandom(200 * 1024)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    home = tmp_path / "a"
    [imported] = json.loads(run_cli(home, "--json", "import", "--raw", str(source)).stdout)
    run_cli(home, "push", imported["model"]["sha256"], f"oci://{registry.host}/interop/out:v1")
    client = oras_client.OrasClient(hostname=registry.host, insecure=True)
    out = tmp_path / "oras-out"
    [pulled] = client.pull(target=f"{registry.host}/interop/out:v1", outdir=str(out))
    assert Path(pulled).read_bytes() == data


def test_an_oras_push_is_pulled_by_webmodels(registry: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    files = {"tokenizer.json": b'{"vocab": {}}', "weights.safetensors": os.urandom(64 * 1024)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    client = oras_client.OrasClient(hostname=registry.host, insecure=True)
    old = Path.cwd()
    os.chdir(folder)  # oras titles each layer by the path it was given
    try:
        client.push(target=f"{registry.host}/interop/in:v1", files=sorted(files))
    finally:
        os.chdir(old)
    home = tmp_path / "b"
    pulled = json.loads(
        run_cli(home, "--json", "pull", f"oci://{registry.host}/interop/in:v1").stdout
    )
    paths = {entry["path"]: entry["sha256"] for entry in pulled["manifest"]["files"]}
    assert set(paths) == set(files)
    for name, data in files.items():
        assert read_held(home, paths[name]) == data
