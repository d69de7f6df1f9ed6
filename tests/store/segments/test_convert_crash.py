"""Converting a store of whole files (store-v2) to segments, killed with SIGKILL at
random points: after every kill each model reads back byte for byte, SQLite's
integrity check passes and no blob is both without its whole file and without a
recipe; a last run completes the conversion and leaves no whole file behind.

The default run kills 10 conversions; ``WEBMODELS_LONG=1`` kills 60 on larger files."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import time
from pathlib import Path

import numpy as np

from webmodels.digest import Digest
from webmodels.store import Store
from webmodels.store.convert import pending_files, run_conversion
from webmodels.store.gc import execute_gc, plan_gc

LONG = os.environ.get("WEBMODELS_LONG") == "1"
KILLS = 60 if LONG else 10
FILE_BYTES = (2 << 20) if LONG else (384 << 10)


def make_v1_store(root: Path, folder: Path) -> dict[Digest, bytes]:
    """A store made by the whole-file code path: three families of variants (a few
    bytes changed in each variant, so they share most content-defined chunks)."""
    rng = np.random.default_rng(15)
    files: dict[Digest, bytes] = {}
    with Store(root, segments=False) as store:
        for family in range(3):
            base = bytearray(rng.bytes(FILE_BYTES))
            for variant in range(4):
                data = bytearray(base)
                at = (variant * 97_003) % (FILE_BYTES - 64)
                data[at : at + 64] = rng.bytes(64)
                path = folder / f"f{family}v{variant}.bin"
                path.write_bytes(bytes(data))
                result = store.import_file(path, raw=True, name=f"f{family}v{variant}")
                files[result.model.digest] = bytes(data)
    return files


def convert_in_child(root: Path) -> int:
    """A forked process that starts the store as the host does and converts."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            with Store(root, segments=True) as store:
                store.remove_stale_temp_files()  # what every start does (Store.open)
                run_conversion(store)
            code = 0
        finally:
            os._exit(code)
    return pid


def check_intact(root: Path, files: dict[Digest, bytes]) -> int:
    """Every invariant a kill must keep; the number of files kept as segments."""
    with Store(root) as store:  # not `open`: look before any start settles things
        assert store.index.query("PRAGMA integrity_check")[0][0] == "ok"
        recipes = {r[0] for r in store.index.query("SELECT sha256 FROM recipes")}
        for digest, data in files.items():
            assert store.files.exists(digest) or digest.hex in recipes, digest.hex
            got, size = store.read(digest, 0, len(data) + 1)
            assert size == len(data)
            assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), digest.hex
        return len(recipes)


def test_a_conversion_killed_at_random_points_loses_nothing_and_completes(
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    pristine, root = tmp_path / "v1", tmp_path / "store"
    files = make_v1_store(pristine, tmp_path)
    shutil.copytree(pristine, root)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"seed {seed}")
    kills = rounds = 0
    converted: list[int] = []
    while kills < KILLS:
        rounds += 1
        assert rounds < KILLS * 6, f"only {kills} kills landed in {rounds} rounds"
        pid = convert_in_child(root)
        time.sleep(rng.uniform(0, 0.12))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        done = check_intact(root, files)
        if os.waitstatus_to_exitcode(status) == -signal.SIGKILL:
            kills += 1
            converted.append(done)
        if done == len(files):  # it finished before the kill: start over from v1
            shutil.rmtree(root)
            shutil.copytree(pristine, root)
    print(f"{kills} kills in {rounds} rounds; files kept as segments after each: {converted}")

    pid = convert_in_child(root)  # a last run, left alone, completes the conversion
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert check_intact(root, files) == len(files)
    with Store(root) as store:
        assert pending_files(store) == []
        assert list(store.files.iter_blobs()) == []  # no whole file stays
        assert store.segmented.store.stale_temps() == []
        execute_gc(store, plan_gc(store))  # orphan segments of killed runs, if any
        with store.index.snapshot() as db:
            assert store.segmented.orphans(db) == []
    assert check_intact(root, files) == len(files)  # gc took nothing a recipe names
    print(f"wall {time.monotonic() - began:.1f} s")
