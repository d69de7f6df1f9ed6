"""A process killed between renaming a verified blob into `blobs/` and committing its
index rows: the next start takes the blob back unless a row names it. Found by the
kill loop of `scripts/stress` (1 or 2 in 110 kills left a blob no row named until a
`gc`; docs/reliability.md).
The whole-file layout, which the store reads whatever its switch says: `segments=False`
(tests/store/segments/ kill writers of segments)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from support.models import tiny_model
from webmodels.store import Store
from webmodels.store import store as store_module
from webmodels.store.gc import plan_gc


def import_and_die_before_commit(root: Path, model: Path) -> None:
    """In a child process: import `model`, dying (as from SIGKILL: no clean-up runs)
    right after the rename, inside the index transaction."""
    pid = os.fork()
    if pid == 0:  # the child
        try:

            def die(*_: object, **__: object) -> None:
                os._exit(9)

            store_module.upsert_object = die  # type: ignore[assignment]
            Store(root, segments=False).import_file(model)
        finally:
            os._exit(1)  # never reached when the crash point was
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9, "the child did not reach the crash point"


def test_a_blob_whose_index_write_never_committed_is_gone_after_the_next_start(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    model = tiny_model(tmp_path / "m.onnx", weight_bytes=4096)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    import_and_die_before_commit(root, model)
    left = list((root / "blobs").rglob(digest))
    assert left, "the crash point is after the rename: the blob file is there"

    with Store(root, segments=False) as store:
        store.remove_stale_temp_files()  # what every start does (Store.open)
        assert not any(p.exists() for p in left)
        assert list(store.files.tmp_dir.iterdir()) == []
        assert [i.kind for i in plan_gc(store).items] == []  # nothing left for gc


def test_a_blob_another_process_indexed_stays_and_later_imports_leave_no_marker(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    model = tiny_model(tmp_path / "m.onnx", weight_bytes=4096)
    with Store(root, segments=False) as store:
        held = store.import_file(model).model.digest  # indexed before the crash
        assert list(store.files.tmp_dir.iterdir()) == []  # the marker went at commit
    import_and_die_before_commit(root, model)  # the same bytes again, killed mid-publish
    with Store(root, segments=False) as store:
        store.remove_stale_temp_files()
        path = store.files.path_of(held)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == held.hex
        assert store.get(held) is not None
        assert list(store.files.tmp_dir.iterdir()) == []
