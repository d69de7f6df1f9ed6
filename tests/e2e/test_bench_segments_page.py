"""scripts/bench/segments_page.py still measures what it says: two hosts in headless
Chromium, one keeping whole files and one keeping segments, each page reading every
file whole via the fast path with its bytes checked. A smoke run of the benchmark
(no figures asserted), only with ``WEBMODELS_LONG=1``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from support.containers import write_safetensors

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench"

pytestmark = pytest.mark.skipif(
    os.environ.get("WEBMODELS_LONG") != "1", reason="the long run: WEBMODELS_LONG=1"
)


def test_page_reads_of_both_layouts(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCH))
    from segments_page import page_figures

    rng = np.random.default_rng(15)
    tensors = tmp_path / "tensors.safetensors"
    write_safetensors(tensors, [rng.random(n, dtype=np.float32) for n in (300_000, 500_000)])
    blob = tmp_path / "other.bin"
    blob.write_bytes(rng.bytes(3 << 20))
    figures = page_figures([tensors, blob, tensors], tmp_path / "work", rounds=2)
    print(f"page reads, segments / whole: {figures.ratio:.2f}")
    assert figures.files == 2  # one copy per content
    assert len(figures.whole_s) == len(figures.segments_s) == 2
    assert figures.segmented_files == 2  # and none in the whole-file store (checked there)
