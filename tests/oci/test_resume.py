"""A pull that was killed (SIGKILL, power loss) leaves its partial layer in
``<data folder>/oci-pulls/<manifest>/``; the next pull resumes it with ``Range`` and
still checks the whole layer against its digest. The partial is written here as a
killed pull leaves it (killing a loopback pull at the right moment cannot be timed
reliably)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from support.held import held_in, read_held
from support.host import run_cli
from support.registry import Registry


def _push(home: Path, tmp_path: Path, data: bytes, target: str) -> tuple[str, str]:
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    [imported] = json.loads(run_cli(home, "--json", "import", "--raw", str(source)).stdout)
    sha: str = imported["model"]["sha256"]
    pushed = json.loads(run_cli(home, "--json", "push", sha, target).stdout)
    manifest: str = pushed["digest"].removeprefix("sha256:")
    return sha, manifest


def _leave_partial(home: Path, manifest: str, sha: str, data: bytes) -> Path:
    staging = home / "oci-pulls" / manifest
    staging.mkdir(parents=True)
    partial = staging / f"{sha}.part"
    partial.write_bytes(data)
    return partial


def test_an_interrupted_pull_resumes_from_its_partial_layer(
    registry: Registry, tmp_path: Path
) -> None:
    data = os.urandom(1024 * 1024 + 3)
    target = f"oci://{registry.host}/models/resumed:v1"
    sha, manifest = _push(tmp_path / "a", tmp_path, data, target)
    half = len(data) // 2

    good = tmp_path / "b"
    _leave_partial(good, manifest, sha, data[:half])
    pulled = json.loads(run_cli(good, "--json", "pull", target).stdout)
    assert [m["sha256"] for m in pulled["models"]] == [sha]
    assert read_held(good, sha) == data
    assert not (good / "oci-pulls" / manifest).exists()

    # A partial whose first half is wrong: the pull appends the registry's second
    # half (it asked for a Range, not the whole blob), so the layer fails its digest,
    # nothing is stored, and the bad partial is dropped; the next pull starts clean.
    bad = tmp_path / "c"
    partial = _leave_partial(bad, manifest, sha, bytes(half))
    refused = run_cli(bad, "pull", target, check=False)
    assert refused.returncode == 1 and "integrity_mismatch" in refused.stderr
    assert not partial.exists() and sha not in held_in(bad)
    run_cli(bad, "pull", target)
    assert read_held(bad, sha) == data
