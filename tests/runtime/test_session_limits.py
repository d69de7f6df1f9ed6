"""Session limits a page can hit (issue 11, hole 15): the host-wide ceiling answers
exactly like the site's own limit, and a busy reply carries no host-wide figures (how
many sessions or calls other sites have is none of a page's business)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from support.runtime_models import identity_model, save, slow_model
from webmodels.config import Config
from webmodels.errors import HostError
from webmodels.runtime.probe import ProbeResult, ProviderProbe
from webmodels.runtime.sessions import SessionManager
from webmodels.runtime.settings import SessionSettings
from webmodels.runtime.tensors import Tensor
from webmodels.store.store import Store

CPU = "CPUExecutionProvider"


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[SessionManager, Store, Path]]:
    store = Store.open(Config(home=tmp_path / "home", log_dir=tmp_path / "logs"))
    probe = ProviderProbe(runner=lambda timeout: ProbeResult("1.31.1", (CPU,), (CPU,)))
    settings = SessionSettings(
        run_timeout_s=3.0,
        background_compile=False,
        max_per_partition=1,
        max_total=2,
        max_concurrent_calls=1,
    )
    sessions = SessionManager(store, probe, settings, log_path=tmp_path / "worker.log").start()
    yield sessions, store, tmp_path
    sessions.close()
    store.close()


def refusal(call: object) -> dict[str, object]:
    with pytest.raises(HostError) as caught:
        call()  # type: ignore[operator]
    return caught.value.to_wire()


def test_the_host_wide_session_ceiling_answers_like_the_sites_own_limit(
    manager: tuple[SessionManager, Store, Path],
) -> None:
    sessions, store, folder = manager
    ident = store.import_file(save(identity_model("float32"), folder / "id.onnx")).model.digest
    sessions.create(ident, partition="p")
    own = refusal(lambda: sessions.create(ident, partition="p"))  # p's own limit
    sessions.create(ident, partition="q")  # the host now holds its ceiling
    ceiling = refusal(lambda: sessions.create(ident, partition="r"))
    assert own["code"] == "busy"
    assert ceiling == own


def test_a_busy_call_reply_carries_no_host_wide_count(
    manager: tuple[SessionManager, Store, Path],
) -> None:
    sessions, store, folder = manager
    slow = store.import_file(save(slow_model(), folder / "slow.onnx")).model.digest
    theirs = sessions.create(slow, partition="p")
    mine = sessions.create(slow, partition="q")
    thread = threading.Thread(
        target=refusal,  # runs past the 3 s limit and is stopped
        args=(lambda: sessions.run(theirs.session_id, "p", {"n": scalar(10**10)}),),
    )
    thread.start()
    deadline = time.monotonic() + 30
    while sessions.table.calls == 0 and time.monotonic() < deadline:  # p's call has its slot
        time.sleep(0.01)
    busy = refusal(lambda: sessions.run(mine.session_id, "q", {"n": scalar(1)}))
    thread.join()
    print(busy)
    assert busy["code"] == "busy"
    assert not any(ch.isdigit() for ch in str(busy["message"]))
    assert busy["details"] == {}


def scalar(n: int) -> Tensor:
    return Tensor("int64", (), np.array(n, np.int64).tobytes())
