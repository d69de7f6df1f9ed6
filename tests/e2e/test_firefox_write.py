"""The fast write path in real Firefox ESR: a Cross-Origin Storage write goes as one
Blob through the extension's bridge to the host's one-time upload URL, and reads back
byte-identical (the same page code as tests/e2e/test_fast_write.py)."""

from __future__ import annotations

import pytest

from e2e.test_fast_write import WRITE
from e2e.test_firefox import Firefox, shared_firefox

pytestmark = pytest.mark.e2e
__all__ = ["shared_firefox"]  # a fixture shared with test_firefox


@pytest.mark.parametrize("mib, parts", [(200, 1), (16, 1000)])
def test_a_write_goes_through_the_bridge_in_firefox(
    shared_firefox: Firefox, mib: int, parts: int
) -> None:
    shared_firefox.open()
    outcome = shared_firefox.run(f"return await ({WRITE})(args);", mib, parts)
    assert "error" not in outcome, outcome
    result = outcome["ok"]
    assert result["back"] == {"sha256": result["hex"], "size": mib << 20, "isFile": True}
    [verdict] = result["verdicts"]
    assert verdict["origin"] == shared_firefox.origin  # posted by the relay, never the bridge
    assert verdict["result"]["model"]["sha256"] == result["hex"]
    assert "127.0.0.1" not in str(verdict)
    print(
        f"\n{mib} MiB COS write in {parts} parts, Firefox: {mib / (result['ms'] / 1000):.0f} MiB/s"
    )
