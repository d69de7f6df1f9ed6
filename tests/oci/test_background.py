"""``webmodels pull oci://… --background`` against the real registry: the artifact's
layers become download jobs (one model entry in ``webmodels jobs`` for several titled
layers, whose manifest the detached runner saves), and a runner killed half-way
through a layer resumes it with ``Range`` from its partial file."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from oci.mirror_proxy import registry_proxy
from oci.test_mirrors import put_blob, sha, stored
from support.held import held_in
from support.host import run_cli
from support.manifest_models import matmul_chain
from support.registry import Registry
from webmodels.digest import Digest
from webmodels.manifests.importing import import_model_files
from webmodels.oci.artifact import EMPTY_CONFIG, MANIFEST_TYPE, Layer, build_manifest
from webmodels.oci.client import RegistryClient
from webmodels.oci.push import layers_of_manifest, push
from webmodels.oci.reference import Reference
from webmodels.store.manifests import list_manifests
from webmodels.store.store import Store


def cli_json(home: Path, *args: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(run_cli(home, "--json", *args).stdout)
    return value


def saved_manifests(home: Path) -> list[Any]:
    if not (home / "store-v2").exists():
        return []
    with Store(home / "store-v2") as store:
        return list(list_manifests(store.index))


def wait_for(check: Any, what: str) -> None:
    deadline = time.monotonic() + 60
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_background_pull_of_a_model_of_several_files_is_one_job_entry(
    registry: Registry, tmp_path: Path
) -> None:
    graph = matmul_chain(tmp_path / "m", width=64, layers=2)
    with Store(tmp_path / "a" / "store-v2") as source:  # what `import` + `push` do
        manifest = import_model_files(source, graph).manifest
        client = RegistryClient(Reference(registry.host, "models/chain", "1.0"))
        try:
            push(source, client, layers_of_manifest(manifest), annotations={})
        finally:
            client.close()
    b = tmp_path / "b"
    target = f"oci://{registry.host}/models/chain:1.0"
    started = cli_json(b, "pull", target, "--background")
    assert started["background"] is True and len(started["jobs"]) == len(manifest.entries)
    wait_for(lambda: saved_manifests(b), "the runner did not save the model")
    [saved] = saved_manifests(b)
    assert saved.manifest == manifest  # the same files, roles and digest
    for entry in manifest.entries:
        assert stored(b, entry.digest.hex) == (tmp_path / "m" / entry.path).read_bytes()
    table = run_cli(b, "jobs").stdout  # one line for the model, then its files
    assert f"({len(manifest.entries)} files)" in table, table
    assert f"model.onnx: oci://{registry.host}/models/chain@sha256:" in table, table


def _runner_pid(home: Path) -> int | None:
    """The detached `jobs --run` this test's pull started (its --store names `home`)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(home).encode() in argv and b"--run" in argv:
            return int(proc.name)
    return None


def _partial(home: Path, at_least: int) -> Path | None:
    for path in home.glob("store-v2/tmp/dl-*.partial"):
        if path.stat().st_size >= at_least:
            return path
    return None


def test_a_background_registry_pull_killed_half_way_resumes_with_range(
    registry: Registry, home: Path
) -> None:
    data = os.urandom(1024 * 1024)
    put_blob(registry.host, data)
    put_blob(registry.host, EMPTY_CONFIG)
    body = build_manifest([Layer(Digest(sha(data)), len(data), "weights.bin")], {})
    client = RegistryClient(Reference(registry.host, "models"))
    try:
        client.put_manifest("slow", body, MANIFEST_TYPE)
    finally:
        client.close()
    with registry_proxy(registry.host, rate=512 * 1024) as (proxy, state):
        started = cli_json(home, "pull", f"oci://{proxy}/models:slow", "--background")
        assert len(started["jobs"]) == 1
        wait_for(lambda: _partial(home, 128 * 1024), "the runner wrote no partial file")
        pid = _runner_pid(home)
        assert pid is not None, "no runner found"
        os.kill(pid, signal.SIGKILL)
        partial = _partial(home, 1)
        assert partial is not None
        kept = partial.stat().st_size
        assert 0 < kept < len(data)
        state.rate = None
        again = cli_json(home, "pull", f"oci://{proxy}/models:slow", "--background")
        assert again["jobs"] == started["jobs"]  # the same job, handed to a new runner
        wait_for(lambda: sha(data) in held_in(home), "not resumed")
    assert stored(home, sha(data)) == data
    ranges = [r for path, r in state.seen if r and sha(data) in path]
    assert ranges and int(ranges[-1].removeprefix("bytes=").split("-")[0]) > 0, state.seen
    print(f"killed at {kept} of {len(data)} bytes; resumed with {ranges[-1]}")
