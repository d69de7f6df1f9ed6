"""Converting whole files to segments as a user sees it: ``webmodels store convert``
then ``webmodels du --explain`` / ``du --models`` name what each file shares with
which other; the host's background pass converts only with the switch on; and a file
reads back byte for byte while another store instance converts it."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import numpy as np

from support.host import run_cli
from webmodels import STORE_LAYOUT
from webmodels.digest import Digest
from webmodels.store import Store
from webmodels.store.convert import Converter, pending_files, run_conversion
from webmodels.store.gc import execute_gc, plan_gc

SIZE = 512 << 10


def whole_store(root: Path, folder: Path) -> dict[str, tuple[Digest, bytes]]:
    """A store made by the whole-file code path: a file, a variant of it (64 bytes
    changed in the middle) and an unrelated file."""
    rng = np.random.default_rng(7)
    base = rng.bytes(SIZE)
    variant = base[: SIZE // 2] + rng.bytes(64) + base[SIZE // 2 + 64 :]
    out = {}
    with Store(root, segments=False) as store:
        for name, data in (("base", base), ("variant", variant), ("other", rng.bytes(SIZE))):
            path = folder / f"{name}.bin"
            path.write_bytes(data)
            out[name] = (store.import_file(path, raw=True, name=name).model.digest, data)
    return out


def test_store_convert_then_du_explain_names_the_shared_segments(home: Path) -> None:
    import json

    files = whole_store(home / STORE_LAYOUT, home)
    base, variant, other = (files[n][0] for n in ("base", "variant", "other"))
    converted = json.loads(run_cli(home, "--json", "store", "convert").stdout)
    assert converted["converted"] == 3

    explained = json.loads(run_cli(home, "--json", "du", "--explain", "base").stdout)
    assert explained["sha256"] == base.hex and explained["segmented"] is True
    shares = {s["sha256"]: s for s in explained["shares"]}
    assert set(shares) == {variant.hex}  # not the unrelated file
    assert shares[variant.hex]["segments"] >= 2
    assert SIZE // 2 <= shares[variant.hex]["bytes"] < SIZE  # most of it, not all

    per_model = {
        m["sha256"]: m for m in json.loads(run_cli(home, "--json", "du", "--models").stdout)
    }
    assert per_model[other.hex]["shared"] == 0 and per_model[other.hex]["own"] == SIZE
    assert per_model[base.hex]["shared"] == shares[variant.hex]["bytes"]
    assert per_model[base.hex]["own"] + per_model[base.hex]["shared"] == SIZE
    with Store(home / STORE_LAYOUT) as store:
        assert list(store.files.iter_blobs()) == []  # the whole files are gone
        for digest, data in files.values():
            assert store.read(digest, 0, SIZE)[0] == data


def test_the_host_pass_converts_only_with_the_switch_on(tmp_path: Path) -> None:
    root = tmp_path / "store"
    files = whole_store(root, tmp_path)
    with Store(root, segments=False) as store:
        Converter(store, delay_s=0, pause_s=0).start().close()
        assert len(pending_files(store)) == 3  # switch off: nothing changes
    with Store(root, segments=True) as store:
        converter = Converter(store, delay_s=0, pause_s=0).start()
        deadline = time.monotonic() + 120
        while converter.report is None and time.monotonic() < deadline:
            time.sleep(0.02)
        converter.close()
        assert converter.report is not None and converter.report.converted == 3
        assert pending_files(store) == []
        for digest, data in files.values():
            assert store.read(digest, 0, SIZE)[0] == data


def test_files_read_back_while_another_store_converts_them(tmp_path: Path) -> None:
    root = tmp_path / "store"
    files = list(whole_store(root, tmp_path).values())
    expected = {d: hashlib.sha256(data).digest() for d, data in files}
    failures: list[str] = []
    reads = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal reads
        with Store(root) as store:
            while not stop.is_set():
                for digest, _ in files:
                    try:
                        got, _size = store.read(digest, 0, SIZE)
                    except Exception as exc:  # any error is the failure
                        failures.append(f"{digest.short}: {exc!r}")
                        continue
                    if hashlib.sha256(got).digest() != expected[digest]:
                        failures.append(f"{digest.short}: wrong bytes")
                    reads += 1

    threads = [threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):  # convert, then put the whole files back and go again
            with Store(root, segments=True) as store:
                assert run_conversion(store).converted == 3
            _back_to_whole(root, files)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    print(f"{reads} reads during 3 conversions")
    assert failures == []


def _back_to_whole(root: Path, files: list[tuple[Digest, bytes]]) -> None:
    """Undo a conversion the way a store-v2 looks: whole files, no recipes."""
    with Store(root, segments=False) as store:
        for digest, data in files:
            path = store.files.path_of(digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        with store.index.write() as db:
            db.execute("DELETE FROM recipes")
            db.execute("DELETE FROM segment_refs")


def test_gc_collects_the_segments_of_a_conversion_killed_before_its_commit(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    files = whole_store(root, tmp_path)
    with Store(root, segments=True) as store:
        digest, data = files["other"]
        left = store.segmented.store.ingest(store.files.path_of(digest))  # then killed
        orphans = {store.segmented.store.locate(s)[0] for s in left.segments}
        plan = plan_gc(store)
        found = {i.path for i in plan.items if i.kind in ("orphan_segment", "orphan_pack")}
        assert found == orphans
        execute_gc(store, plan)
        assert not any(path.exists() for path in orphans)
        assert store.read(digest, 0, SIZE)[0] == data  # still from its whole file

        assert run_conversion(store).converted == 3
        assert [i for i in plan_gc(store).items if i.kind.startswith("orphan_")] == []
        execute_gc(store, plan_gc(store))
        for digest, data in files.values():  # gc took nothing a recipe names
            assert store.read(digest, 0, SIZE)[0] == data
