"""Failures half-way: an importer killed mid-copy, temp files of writers dead and
alive, and a disk that fills up. None of them may leave a partial blob in ``blobs/``
or an index row without its blob."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.held import held
from support.host import run_cli, webmodels_env
from support.models import tiny_model
from webmodels.errors import HostError
from webmodels.store import Store
from webmodels.store.metadata import ModelMetadata

MiB = 1024 * 1024


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def index_rows(home: Path) -> dict[str, int]:
    with sqlite3.connect(home / "store-v2" / "index.sqlite3") as db:
        return {
            table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("objects", "blobs", "refs")
        }


def index_dump(home: Path) -> list[str]:
    with sqlite3.connect(home / "store-v2" / "index.sqlite3") as db:
        return list(db.iterdump())


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def open_fifo_for_writing(fifo: Path, reader: subprocess.Popen[bytes]) -> int:
    """Wait (bounded) until the importer opens the FIFO, then return a blocking fd."""
    deadline = time.monotonic() + 60
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or reader.poll() is not None:
                raise AssertionError(f"importer never opened the FIFO: {reader.poll()}") from exc
            if time.monotonic() > deadline:
                raise AssertionError("importer never opened the FIFO") from exc
            time.sleep(0.02)
            continue
        os.set_blocking(fd, True)
        return fd


def wait_for_partial(tmp: Path, *, at_least: int) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partials = list(tmp.glob("*.partial"))
        if partials and partials[0].stat().st_size >= at_least:
            return partials[0]
        time.sleep(0.02)
    raise AssertionError(f"no temp file of {at_least} bytes appeared in {tmp}")


def test_a_killed_import_leaves_no_blob_and_the_next_start_cleans_up(
    home: Path, tmp_path: Path
) -> None:
    data = tiny_model(tmp_path / "big.onnx", weight_bytes=4 * MiB).read_bytes()
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    importer = subprocess.Popen(
        [sys.executable, "-m", "webmodels", "import", str(fifo)],
        env=webmodels_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tmp = home / "store-v2" / "tmp"
    try:
        fd = open_fifo_for_writing(fifo, importer)
        try:
            os.write(fd, data[: 3 * MiB // 2])  # then the writer stalls, mid-model
            partial = wait_for_partial(tmp, at_least=MiB)
            importer.send_signal(signal.SIGKILL)
            assert importer.wait(timeout=30) == -signal.SIGKILL
        finally:
            os.close(fd)
    finally:
        if importer.poll() is None:
            importer.kill()
            importer.wait()

    assert partial.name.startswith(f"{importer.pid}-")
    assert [p.name for p in tmp.iterdir()] == [partial.name]
    assert files_under(home / "store-v2" / "blobs") == []
    assert index_rows(home) == {"objects": 0, "blobs": 0, "refs": 0}

    result = run_cli(home, "ls")

    assert "no models" in result.stdout
    assert list(tmp.iterdir()) == []


def test_temp_files_of_living_writers_and_resumable_downloads_are_kept(home: Path) -> None:
    run_cli(home, "ls")  # creates the store
    tmp = home / "store-v2" / "tmp"
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        ours = tmp / f"{os.getpid()}-1111.partial"
        living = tmp / f"{sleeper.pid}-2222.partial"
        resumable = tmp / f"{dead_pid()}-3333.partial"
        stale = tmp / f"{dead_pid()}-4444.partial"
        recycled = tmp / f"{sleeper.pid}-5555.partial"  # a live pid, but two days old
        for path in (ours, living, resumable, stale, recycled):
            path.write_bytes(b"half a model")
        resumable.with_suffix(".json").write_text('{"url": "https://example.com/m.onnx"}')
        two_days_ago = time.time() - 2 * 24 * 3600
        os.utime(recycled, (two_days_ago, two_days_ago))

        run_cli(home, "ls")

        assert sorted(p.name for p in tmp.iterdir()) == sorted(
            [ours.name, living.name, resumable.name, resumable.with_suffix(".json").name]
        )
    finally:
        sleeper.kill()
        sleeper.wait()


# -- a full disk ----------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB file system (tmpfs); needs the right to mount (root here)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("no mount command here; the free-space pre-check is still tested below")
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_fails_the_import_and_leaves_nothing(small_disk: Path, tmp_path: Path) -> None:
    home = small_disk / "home"
    model = tiny_model(tmp_path / "big.onnx", weight_bytes=4 * MiB)
    system = tmp_path / "system-models"
    tiny_model(system / "small.onnx")
    (system / "models.json").write_text(
        '{"version": 1, "models": [{"file": "small.onnx", "name": "acme/small"}]}'
    )
    preinstalled = ("--preinstalled", str(system))
    run_cli(home, *preinstalled, "ls")  # an index with a row in it
    before = index_dump(home)

    # A regular file: its size is known, so the free-space check refuses it up front.
    checked = run_cli(home, *preinstalled, "import", str(model), check=False)
    # A stream (size unknown): the copy itself runs into ENOSPC.
    streamed = subprocess.run(
        [sys.executable, "-m", "webmodels", *preinstalled, "import", "/dev/stdin"],
        input=model.read_bytes(),
        env=webmodels_env(home),
        capture_output=True,
        timeout=120,
    )

    assert checked.returncode == 1 and "error [disk_full]" in checked.stderr
    assert "kept in reserve, but only" in checked.stderr
    assert streamed.returncode == 1 and b"error [disk_full]" in streamed.stderr
    assert b"is full" in streamed.stderr
    assert files_under(home / "store-v2" / "blobs") == []
    assert list((home / "store-v2" / "tmp").iterdir()) == []
    assert index_dump(home) == before
    assert "acme/small" in run_cli(home, *preinstalled, "ls").stdout  # still works


def fill(disk: Path) -> Path:
    """Take every free byte of `disk` with one file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, bytes(64 * 1024))
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def test_a_disk_that_fills_up_before_the_index_write_leaves_no_blob(
    small_disk: Path, tmp_path: Path
) -> None:
    source = tmp_path / "tokenizer.json"
    source.write_text('{"vocab": {}}' + " " * 5000)
    with Store(small_disk / "store-v2") as store, source.open("rb") as stream:
        pending = store.files.write_stream(stream)
        before = index_dump(small_disk)
        filler = fill(small_disk)  # the copy fitted; the index write will not

        with pytest.raises(HostError) as caught:
            store.ingest(pending, ModelMetadata("json"), origin="imported", refs=[("import", "t")])

        assert caught.value.code == "disk_full"
        assert held(store) == set()
        assert list(store.files.tmp_dir.iterdir()) == []
        assert index_dump(small_disk) == before
        # With space again, the same store object imports normally (nothing half-done).
        filler.unlink()
        stream.seek(0)
        again = store.files.write_stream(stream)
        result = store.ingest(
            again, ModelMetadata("json"), origin="imported", refs=[("import", "t")]
        )
        assert not result.deduplicated and result.model.stored
        assert held(store) == {result.model.digest}


def test_the_free_space_check_refuses_a_model_larger_than_the_free_space(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one simulated piece: the free-space figure, so that this runs where no
    # small file system can be mounted. Everything else is the real store.
    model = tiny_model(tmp_path / "m.onnx", weight_bytes=4 * MiB)
    real_usage = shutil.disk_usage
    monkeypatch.setattr(
        "webmodels.store.blobs.shutil.disk_usage",
        lambda path: real_usage(path)._replace(free=2 * MiB),
    )
    with Store(home / "store-v2") as store:
        with pytest.raises(HostError) as caught:
            store.import_file(model)

        assert caught.value.code == "disk_full"
        assert caught.value.details == {"needed": model.stat().st_size, "free": 2 * MiB}
        assert str(store.root) in caught.value.message
        assert store.list_models() == []
        assert held(store) == set()
        assert list(store.files.tmp_dir.iterdir()) == []
