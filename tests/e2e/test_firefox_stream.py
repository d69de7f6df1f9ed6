"""`model.stream()` over the bridge in real Firefox ESR: the same page code as
tests/e2e/test_stream_fast_path.py; chunk by chunk, byte-identical, no native-messaging
reads."""

from __future__ import annotations

import pytest

from e2e.test_fast_write import WRITE
from e2e.test_firefox import Firefox, shared_firefox
from e2e.test_stream_fast_path import SIZE, STREAM

pytestmark = pytest.mark.e2e
__all__ = ["shared_firefox"]  # a fixture shared with test_firefox


def test_a_64_mib_model_streams_through_the_bridge_in_firefox(shared_firefox: Firefox) -> None:
    shared_firefox.open()
    # Stored through Cross-Origin Storage (a 64 MiB download would need a user gesture,
    # which WebDriver cannot give here).
    written = shared_firefox.run(f"return await ({WRITE})(args);", SIZE >> 20, 1)
    assert "error" not in written, written
    sha = written["ok"]["hex"]
    outcome = shared_firefox.run(f"return await ({STREAM})(args);", {"sha256": sha}, False)
    assert "error" not in outcome, outcome
    result = outcome["ok"]
    assert result["sha256"] == sha and result["read"] == SIZE
    assert "models.read" not in result["sent"], shared_firefox.tool("bridgeMessages")
    # Two streams: the write's read-back (getFile() streams too) and stream() itself.
    streams = shared_firefox.tool("bridgeStreams")
    assert streams == [{"origin": shared_firefox.origin, "port": True}] * 2, streams
    assert result["chunks"] > 8
    print(
        f"\n64 MiB model.stream(), Firefox: {result['chunks']} chunks, first after "
        f"{result['firstMs']:.0f} ms, all after {result['ms']:.0f} ms"
    )
