"""The long run of a multi-file pull (``WEBMODELS_LONG=1`` only; CI skips it): four
768 MiB weight shards (3 GiB, WebLLM-style plain files) served by a real loopback HTTP
server from disk, pulled as one named model (three files at once), every file checked
byte for byte. Prints the wall time, MB/s and the pulling CLI's peak RSS."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.host import webmodels_env
from support.httpserver import ModelServer
from support.peak_rss import CLI_WITH_PEAK as RUN_AND_REPORT
from webmodels.store.manifests import list_manifests
from webmodels.store.store import Store

SHARDS, SHARD_MIB = 4, 768

pytestmark = pytest.mark.skipif(
    os.environ.get("WEBMODELS_LONG") != "1", reason="the long run: WEBMODELS_LONG=1"
)


def shard(path: Path, seed: int) -> str:
    """A shard of random bytes, written and hashed 16 MiB at a time; its SHA-256."""
    digest = hashlib.sha256()
    block = os.urandom(16 << 20)
    with path.open("wb") as out:
        for n in range(SHARD_MIB // 16):
            chunk = bytes([seed, n % 256]) + block[2:]
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


@pytest.mark.slow
def test_a_3_gib_model_of_shards_is_pulled_three_files_at_once(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    urls, hashes = [], []
    for n in range(SHARDS):
        path = tmp_path / f"params_shard_{n}.bin"
        hashes.append(shard(path, n))
        urls.append(model_server.add_file(f"/m/{path.name}", path))
    argv = ["--json", "pull", *urls, "--name", "t/shards@1.0.0"]
    for sha in hashes:
        argv += ["--sha256", sha]
    begun = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, *argv],
        env=webmodels_env(home),
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    pull_s = time.monotonic() - begun
    cli_peak = float(done.stderr.rsplit("VmHWM:", 1)[1].split()[0]) / 1024
    pulled = json.loads(done.stdout)["manifest"]
    size = SHARDS * SHARD_MIB << 20
    assert pulled["size"] == size
    with Store(home / "store-v2") as store:
        [stored] = list_manifests(store.index)
        for entry in stored.manifest.entries:
            digest = hashlib.sha256()
            with store.locate(entry.digest).path.open("rb") as data:
                while chunk := data.read(16 << 20):
                    digest.update(chunk)
            assert digest.hexdigest() == entry.digest.hex
    assert sorted(e.digest.hex for e in stored.manifest.entries) == sorted(hashes)
    print(
        f"\npull of {SHARDS} shards, {size >> 20} MiB: {pull_s:.1f} s, "
        f"{size / pull_s / 1e6:.0f} MB/s, CLI peak RSS {cli_peak:.0f} MiB"
    )
    assert cli_peak < 200, "the pulling CLI holds no file in memory"
