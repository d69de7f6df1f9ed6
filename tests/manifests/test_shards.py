"""Sharded weights are plain files of a manifest: a Hugging Face safetensors folder
(shards + ``model.safetensors.index.json`` + tokenizer and config) and a WebLLM-style
folder (``ndarray-cache.json`` + ``params_shard_N.bin``) import as one model with
sensible roles (``weights``, ``index``), are named and listed, and a page that may see
them reads every file back byte for byte through ``models.load({name, version})`` and
``models.read``, with a real CLI and a real host process. A catalog entry listing such
files is pulled as one model with its roles, and so are the same files pulled by URL."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

from support.catalogs import CatalogSigner
from support.host import HostProcess, run_cli
from support.httpserver import ModelServer

SITE = "http://a.localhost:8000"
PAGE = {"partition": {"top_site": SITE, "origin": SITE}, "user_activation": True, "trusted": False}


def safetensors(tensors: dict[str, bytes]) -> bytes:
    """A safetensors file (F32 tensors), written by hand: an 8-byte little-endian header
    length, the JSON header (padded to 8 bytes), then the data."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, data in tensors.items():
        header[name] = {
            "dtype": "F32",
            "shape": [len(data) // 4],
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(tensors.values())


def hf_folder(folder: Path) -> dict[str, str]:
    """Two safetensors shards, their index, tokenizer and config; path → expected role."""
    folder.mkdir(parents=True)
    weight_map = {}
    for shard in (1, 2):
        name = f"model-0000{shard}-of-00002.safetensors"
        tensors = {f"layer.{shard}.weight": os.urandom(200_000)}
        (folder / name).write_bytes(safetensors(tensors))
        weight_map.update(dict.fromkeys(tensors, name))
    index = {"metadata": {"total_size": 400_000}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
    (folder / "tokenizer_config.json").write_text('{"bos_token": "<s>"}')
    return {
        "model-00001-of-00002.safetensors": "weights",
        "model-00002-of-00002.safetensors": "weights",
        "model.safetensors.index.json": "index",
        "config.json": "config",
        "tokenizer.json": "tokenizer",
        "tokenizer_config.json": "tokenizer",
    }


def webllm_folder(folder: Path) -> dict[str, str]:
    """WebLLM's layout: an ndarray cache naming its parameter shards."""
    folder.mkdir(parents=True)
    records = []
    for shard in range(3):
        data = os.urandom(150_000)
        (folder / f"params_shard_{shard}.bin").write_bytes(data)
        records.append({"dataPath": f"params_shard_{shard}.bin", "nbytes": len(data)})
    (folder / "ndarray-cache.json").write_text(json.dumps({"metadata": {}, "records": records}))
    (folder / "mlc-chat-config.json").write_text('{"model_type": "llama"}')
    (folder / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
    return {
        **{f"params_shard_{n}.bin": "weights" for n in range(3)},
        "ndarray-cache.json": "index",
        "mlc-chat-config.json": "config",
        "tokenizer.json": "tokenizer",
    }


def read_all(host: HostProcess, sha256: str) -> bytes:
    """A page reads a stored file chunk by chunk (``models.read``)."""
    data, offset = b"", 0
    while True:
        params = {"sha256": sha256, "offset": offset, "length": 65536}
        chunk = host.result("models.read", params, context=PAGE)
        data += base64.b64decode(chunk["data"])
        offset += chunk["length"]
        if chunk["eof"]:
            return data


def test_sharded_weights_import_named_listed_and_read_back_by_a_page(
    home: Path, tmp_path: Path
) -> None:
    layouts = {"pub/shards": hf_folder, "pub/webllm": webllm_folder}
    roles, imported = {}, {}
    for name, layout in layouts.items():
        folder = tmp_path / name
        roles[name] = layout(folder)
        result = run_cli(home, "--json", "import", str(folder), "--name", f"{name}@1.0.0")
        [made] = json.loads(result.stdout)
        imported[name] = {f["path"]: f for f in made["manifest"]["files"]}
        assert {p: f["role"] for p, f in imported[name].items()} == roles[name]
    listed = {m["name"]: m for m in json.loads(run_cli(home, "--json", "ls").stdout) if "name" in m}
    for name in layouts:
        assert (listed[name]["kind"], listed[name]["version"]) == ("manifest", "1.0.0")
        assert {f["path"] for f in listed[name]["files"]} == set(roles[name])
    host = HostProcess(home)
    try:
        models, read = {}, {}
        for name in layouts:
            for file in imported[name].values():  # the user lets the site see them
                host.result("manage.share", {"sha256": file["sha256"], "top_site": SITE})
            query = {"query": {"name": name, "version": "^1"}}
            models[name] = host.result("models.load", query, context=PAGE)["model"]
            files = models[name]["files"].items()
            read[name] = {path: read_all(host, f["sha256"]) for path, f in files}
    finally:
        host.kill()
    for name in layouts:
        assert (models[name]["name"], models[name]["version"]) == (name, "1.0.0")
        assert "graph" not in models[name]  # weights only: no graph to run
        assert {p: f["role"] for p, f in models[name]["files"].items()} == roles[name]
        folder = tmp_path / name
        assert read[name] == {path: (folder / path).read_bytes() for path in roles[name]}


def test_a_catalog_entry_of_shards_is_pulled_with_its_roles(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    folder = tmp_path / "model"
    roles = hf_folder(folder)
    listed = []
    for path, role in roles.items():
        data = (folder / path).read_bytes()
        url = model_server.add(f"/m/{path}", data, content_type="application/octet-stream")
        sha = hashlib.sha256(data).hexdigest()
        listed.append({"path": path, "url": url, "sha256": sha, "size": len(data), "role": role})
    signer = CatalogSigner("pub")
    document = signer.sign(1, [{"name": "pub/shards", "version": "1.0.0", "files": listed}])
    url = model_server.add("/catalog.json", document, content_type="application/json")
    run_cli(home, "catalog", "add", url, "--key", signer.public)
    pulled = run_cli(home, "pull", "pub/shards@^1")
    assert "pulled pub/shards@1.0.0: 6 files" in pulled.stdout
    [model] = [m for m in json.loads(run_cli(home, "--json", "ls").stdout) if m.get("name")]
    assert {f["path"]: f["role"] for f in model["files"]} == roles
    manifest = model["sha256"]

    # The same files pulled by URL: roles from their names, as `import` gives them (the
    # same files and roles are the same manifest, which takes the new name).
    argv = [f["url"] for f in listed] + ["--name", "pub/by-url@1.0.0"]
    for file in listed:
        argv += ["--sha256", file["sha256"]]
    run_cli(home, "pull", *argv)
    [model] = [m for m in json.loads(run_cli(home, "--json", "ls").stdout) if m.get("name")]
    assert model["name"] == "pub/by-url" and model["sha256"] == manifest
    assert {f["path"]: f["role"] for f in model["files"]} == roles
