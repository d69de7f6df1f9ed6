"""An existing install keeps its commons list: the one row of the old single-list table
moves to the list of the key that signed it, beside the shipped v2."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from webmodels.commons import keeper
from webmodels.commons.gate import CommonsGate, ProbeBudget
from webmodels.commons.trust import Trust
from webmodels.digest import Digest
from webmodels.store import Store
from webmodels.store.index import MIGRATIONS, _statements

V1 = (Path(__file__).parent / "data" / "commons-v1.json").read_bytes()
OLD_KEY_ID = "ea93f7d3ba444df9"
MAGIKA = Digest.parse("fe2d2eb49c5f88a9e0a6c048e15d6ffdf86235519c2afc535044de433169ec8c")
NOW = datetime(2026, 12, 6, tzinfo=UTC).timestamp()


def old_index(path: Path) -> None:
    """An index as the release before per-key lists left it, holding the v1 list."""
    before = next(n for n, m in enumerate(MIGRATIONS) if "CREATE TABLE commons_lists" in m)
    db = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:before]:
        for statement in _statements(migration):
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {before}")
    db.execute(
        "INSERT INTO commons (id, version, document, installed_at) VALUES (1, 1, ?, 1.0)", (V1,)
    )
    db.close()


def test_the_installed_v1_list_migrates_to_its_key(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    old_index(root / "index.sqlite3")
    store = Store(root)
    try:
        assert keeper.installed_documents(store.index) == {OLD_KEY_ID: V1}
        before = CommonsGate(store, Trust.from_config(None), ProbeBudget(), clock=lambda: NOW)
        assert [x.version for x in before.in_force()] == [1]
        assert before.is_listed(MAGIKA)
        before.install_shipped()  # the v2 goes beside it, under the release key
        after = CommonsGate(store, Trust.from_config(None), ProbeBudget(), clock=lambda: NOW)
        assert sorted(x.version for x in after.in_force()) == [1, 2]
        assert after.is_listed(MAGIKA)
    finally:
        store.close()
