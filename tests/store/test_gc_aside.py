"""A gc that dies (SIGKILL, a failing disk) between taking a blob out of `blobs/` and
committing its index write: the next start puts the blob back while its row is still
there, and deletes it when the row is gone. Found by `scripts/stress` (a failed COMMIT
used to leave an index row whose file gc had already deleted). The whole-file layout,
which the store reads whatever its switch says: `segments=False`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from support.models import tiny_model
from webmodels.store import Store


def test_a_blob_set_aside_by_a_gc_that_died_is_back_after_the_next_start(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Store(root, segments=False) as store:
        digest = store.import_file(tiny_model(tmp_path / "m.onnx", weight_bytes=4096)).model.digest
        path = store.files.path_of(digest)
        # Where gc moves a blob it is removing, before its index write commits.
        os.replace(path, store.files.tmp_dir / f"{digest.hex}.aside")
    with Store(root, segments=False) as store:
        store.remove_stale_temp_files()  # what every start does (Store.open)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest.hex
        assert store.read(digest, 0, 4)[1] == path.stat().st_size
        assert list(store.files.tmp_dir.iterdir()) == []


def test_a_blob_set_aside_whose_removal_committed_is_deleted_at_the_next_start(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    with Store(root, segments=False) as store:
        digest = store.import_file(tiny_model(tmp_path / "m.onnx", weight_bytes=4096)).model.digest
        aside = store.files.tmp_dir / f"{digest.hex}.aside"
        store.delete(digest)
        aside.write_bytes(b"set aside; the unlink after the commit never ran")
        assert store.get(digest) is None
    with Store(root, segments=False) as store:
        store.remove_stale_temp_files()
        assert not aside.exists() and not store.files.path_of(digest).exists()
        assert store.get(digest) is None
