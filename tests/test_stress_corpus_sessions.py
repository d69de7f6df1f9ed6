"""The hostile model corpus through ONNX Runtime (docs/reliability.md,
scripts/stress_lib/corpus_runtime.py): every crafted file a real host stores from a
COS write is then opened by a host session, as a page's `sessions.create` would have
ONNX Runtime load it. Each loads or is refused with a documented error code; the
runtime worker may die, but the host answers `hello` throughout and a session of a
valid model created right after each file runs and answers correctly."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from stress_lib.corpus import CORPUS  # noqa: E402
from stress_lib.corpus_runtime import run_corpus_sessions  # noqa: E402

# A graph naming files outside itself, or an operator domain ONNX Runtime does not
# implement, is refused before ONNX Runtime sees it; the rest answer what its load says.
UNSAFE = {name for name in CORPUS if "external" in name or "custom-domain" in name}


def test_every_stored_hostile_file_loads_or_is_refused_and_the_next_session_works(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    outcomes, rss_kib = run_corpus_sessions(tmp_path)
    hello = sorted(t for o in outcomes for t in o.hello_ms)
    for o in outcomes:
        print(o.name, o.opened, o.next_ok, f"hello max {max(o.hello_ms):.1f} ms", o.problems)
    print(f"host peak RSS {rss_kib / 1024:.0f} MiB; hello x{len(hello)}, max {hello[-1]:.1f} ms")
    print(f"wall time: {time.monotonic() - started:.1f} s")
    assert {o.name for o in outcomes} == set(CORPUS)  # a COS write stores every one
    assert [(o.name, o.problems) for o in outcomes if o.problems] == []
    assert {o.name for o in outcomes if o.opened == "model_unsafe"} >= UNSAFE
    # None of these is a model ONNX Runtime can run within the worker's limits.
    assert [o.name for o in outcomes if o.opened == "loaded"] == []
    assert rss_kib < 512 * 1024  # the host's own memory: ONNX Runtime runs in the worker
