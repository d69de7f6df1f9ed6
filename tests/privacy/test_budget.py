"""The probe budget (docs/design.md#privacy): a top-level site may probe at most `probe_budget`
distinct common models per window; the next one is answered as if absent. Hits and
misses count alike, the count lives in the index (restarts keep it), and trusted
callers are never charged."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from privacy.signing import Signer, entry, trusting_config
from support.host import HostProcess, run_cli
from support.models import tiny_model
from webmodels.commons import keeper
from webmodels.digest import Digest
from webmodels.store.index import Index


def page(site: str) -> dict[str, Any]:
    return {
        "partition": {"top_site": site, "origin": site},
        "user_activation": True,
        "trusted": False,
    }


B, C = page("https://b.example"), page("https://c.example")
B_FRAME = {**B, "partition": {"top_site": "https://b.example", "origin": "https://ads.example"}}


def available(host: HostProcess, digest: str, context: Any = None) -> str:
    fields = {} if context is None else {"context": context}
    reply = host.result("models.availability", {"query": {"sha256": digest}}, **fields)
    return str(reply["availability"])


def common_store(
    home: Path,
    tmp_path: Path,
    count: int,
    *,
    extra: list[dict[str, Any]] | None = None,
    **settings: object,
) -> tuple[list[str], dict[str, str]]:
    """`count` stored models, all on a trusted commons list; their digests and env."""
    paths = [tiny_model(tmp_path / f"m{i}.onnx", seed=i + 10) for i in range(count)]
    signer = Signer()
    env = trusting_config(home, signer, **settings)
    run_cli(home, "import", *map(str, paths), **env)
    entries = [entry(p.read_bytes(), name=f"test/m{i}") for i, p in enumerate(paths)]
    listed = signer.write(tmp_path / "l.json", 1, entries + (extra or []))
    run_cli(home, "commons", "update", str(listed), **env)
    return [e["sha256"] for e in entries], env


def test_seventeenth_distinct_probe_is_not_visible_and_survives_restart(
    home: Path, tmp_path: Path
) -> None:
    digests, env = common_store(home, tmp_path, 17)
    host = HostProcess(home, **env)
    try:
        assert [available(host, d, B) for d in digests[:16]] == ["available"] * 16
        assert available(host, digests[16], B) == "unavailable"  # like an absent model
        assert available(host, digests[3], B_FRAME) == "available"  # charged already
        assert available(host, digests[16], B_FRAME) == "unavailable"  # same top site
        assert available(host, digests[16], C) == "available"  # C has its own budget
        assert available(host, digests[16]) == "available"  # trusted: never charged
        assert host.result("cos.lookup", {"sha256": digests[16]}, context=B) == {"found": False}
    finally:
        host.close()
    host = HostProcess(home, **env)
    try:
        assert available(host, digests[16], B) == "unavailable"
        assert available(host, digests[0], B) == "available"
    finally:
        host.close()


def test_misses_are_charged_and_the_window_slides(home: Path, tmp_path: Path) -> None:
    window_s = 1.5
    absent = entry(tiny_model(tmp_path / "absent.onnx", seed=99).read_bytes())
    digests, env = common_store(
        home, tmp_path, 2, extra=[absent], probe_budget=2, probe_window_hours=window_s / 3600
    )
    host = HostProcess(home, **env)
    try:
        assert available(host, absent["sha256"], B) == "unavailable"  # a miss, charged
        assert available(host, digests[0], B) == "available"
        assert available(host, digests[1], B) == "unavailable"  # over budget
        time.sleep(window_s + 0.3)
        assert available(host, digests[1], B) == "available"
    finally:
        host.close()


def test_charge_counts_distinct_models_per_site_and_persists(tmp_path: Path) -> None:
    digests = [Digest(hashlib.sha256(bytes([i])).hexdigest()) for i in range(4)]
    index = Index(tmp_path / "index.sqlite3")

    def charge(site: str, i: int, now: float) -> bool:
        return keeper.charge(
            index, top_site=site, digest=digests[i], limit=2, window_s=100, now=now
        )

    assert charge("https://b.example", 0, 1000) and charge("https://b.example", 1, 1001)
    assert charge("https://b.example", 0, 1002)  # the same model again is free
    assert not charge("https://b.example", 2, 1003)  # a miss or a hit: the third is refused
    assert charge("https://c.example", 2, 1003)
    index.close()
    index = Index(tmp_path / "index.sqlite3")
    assert not charge("https://b.example", 3, 1050)
    assert keeper.charged(index, top_site="https://b.example", window_s=100, now=1050) == 2
    assert charge("https://b.example", 3, 1100.5)  # the first charges left the window
    index.close()
