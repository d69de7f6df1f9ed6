"""`webmodels push` of a file kept as segments streams its layer from the segments:
the registry (Debian's docker-registry) gets the exact bytes, and no copy of the whole
file (a view under the store's ``views/``) is made while it runs or after."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from oci.test_pull_push import cli_json
from support.host import run_cli
from support.registry import Registry

SEGMENTS = {"WEBMODELS_STORE_SEGMENTS": "1"}


def whole_copies(store: Path, size: int) -> list[Path]:
    """Files under the store as large as the model (the index and the packs that hold
    its segments aside)."""
    found = []
    for path in store.rglob("*"):
        if ".sqlite3" in path.name or path.parent.name == "packs":
            continue
        try:
            if path.is_file() and path.stat().st_size >= size:
                found.append(path)
        except FileNotFoundError:  # a temp file renamed meanwhile
            continue
    return found


def test_push_of_a_segmented_file_streams_its_segments_without_a_view(
    registry: Registry, tmp_path: Path
) -> None:
    a = tmp_path / "a"
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    [imported] = json.loads(run_cli(a, "--json", "import", "--raw", str(source), **SEGMENTS).stdout)
    sha: str = imported["model"]["sha256"]
    assert sha == hashlib.sha256(data).hexdigest()
    store = a / "store-v2"
    assert not whole_copies(store, len(data))  # kept as segments, not whole

    seen: list[Path] = []
    done = threading.Event()

    def watch() -> None:  # the store's files while the push runs
        while not done.is_set():
            seen.extend(whole_copies(store, len(data)))
            done.wait(0.01)  # not a timing window: only spares the CPU between looks

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        target = f"oci://{registry.host}/models/segmented:v1"
        pushed = cli_json(a, "push", sha, target, **SEGMENTS)
    finally:
        done.set()
        watcher.join(timeout=60)
    assert pushed["result"] == "pushed"
    assert not seen, f"a whole copy was made while pushing: {sorted(set(seen))}"
    assert not (store / "views").exists() or not any((store / "views").iterdir())

    assert registry.blob_file(sha).read_bytes() == data  # what the registry keeps
