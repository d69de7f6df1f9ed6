"""Timing with the probe budget spent: a stored common model and an absent one.

Both hashes are on the commons list; one is stored (another site's, or the user's), one
was never stored. Once site B has spent its probe budget both answer `unavailable`, and
they must take as long (PRIVACY.md, hole 9): the gate decides from cheap look-ups
before it builds a record. Same method as tests/privacy/test_timing.py (interleaved
pairs in random order, Wilcoxon signed-rank, a low p confirmed by a second round).
Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from privacy.signing import Signer, entry, trusting_config
from privacy.test_timing import AVAILABILITY_PAIRS, check, page, paired
from support.host import HostProcess, run_cli
from support.models import tiny_model


def test_availability_over_the_budget_takes_as_long_for_a_stored_common_model(
    home: Path, tmp_path: Path
) -> None:
    held = tiny_model(tmp_path / "held.onnx", weight_bytes=4096, seed=1)
    never = tiny_model(tmp_path / "never.onnx", weight_bytes=4096, seed=2).read_bytes()
    spent = tiny_model(tmp_path / "spent.onnx", seed=3).read_bytes()
    signer = Signer()
    env = trusting_config(home, signer, probe_budget=1)
    run_cli(home, "import", str(held), **env)
    entries = [
        entry(data, name=f"test/c{i}") for i, data in enumerate([held.read_bytes(), never, spent])
    ]
    run_cli(home, "commons", "update", str(signer.write(home / "list.json", 1, entries)), **env)
    host = HostProcess(home, **env)
    page_b = page(0)

    def ask(digest: str) -> None:
        reply = host.call("models.availability", {"query": {"sha256": digest}}, context=page_b)
        assert reply["result"] == {"availability": "unavailable"}, reply

    try:
        ask(hashlib.sha256(spent).hexdigest())  # B's one probe, spent
        held_hex, never_hex = entries[0]["sha256"], entries[1]["sha256"]
        check(
            "availability by hash, budget spent",
            lambda attempt: paired(
                AVAILABILITY_PAIRS,
                lambda n: ask(held_hex),
                lambda n: ask(never_hex),
                seed=30 + attempt,
            ),
        )
        # Within its budget another site sees the stored one (so the test is not vacuous).
        other = host.result("models.availability", {"query": {"sha256": held_hex}}, context=page(1))
        assert other == {"availability": "available"}
    finally:
        host.kill()
