"""A page that only uses Cross-Origin Storage (ONNX Runtime Web in the page) pays no
Python runtime worker start: storing an ONNX file through ``cos.write`` starts none,
while a ``models.load`` of the same model still starts one ahead of its session
(issue 12). Real host process; the workers are counted among its child processes."""

from __future__ import annotations

import time
from pathlib import Path

from methods.test_sessions import configure, upload
from support.contexts import PAGE_A
from support.host import HostProcess
from support.runtime_models import identity_model, save
from webmodels.runtime.client import WORKER_MODULE

# How long to watch for a worker that should not come: a worker process exists within
# milliseconds of the decision to start one (the fork comes before its handshake).
WATCH_S = 3.0


def page_workers(pid: int) -> list[int]:
    """Child processes of ``pid`` that are page-session runtime workers."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue  # the thread ended
        for child in children:
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue  # the child ended
            if WORKER_MODULE.encode() in argv and b"--background" not in argv:
                found.append(int(child))
    return found


def watch(host: HostProcess, seconds: float) -> list[int]:
    """The page workers seen while watching for up to ``seconds`` (stops at the first)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen = page_workers(host.proc.pid)
        if seen:
            return seen
        time.sleep(0.02)
    return []


def test_a_cos_write_starts_no_worker_and_a_load_does(home: Path, tmp_path: Path) -> None:
    configure(home)  # the defaults: background compilation on
    host = HostProcess(home)
    try:
        model = save(identity_model("float32"), tmp_path / "id.onnx").read_bytes()
        digest = upload(host, model, PAGE_A)  # cos.write.begin / chunk / commit
        after_write = watch(host, WATCH_S)
        print("page workers after the COS write:", after_write)
        assert after_write == [], "storing a model through COS started a runtime worker"

        host.result("models.load", {"query": {"sha256": digest}}, context=PAGE_A)
        after_load = watch(host, 60.0)
        print("page workers after models.load:", after_load)
        assert len(after_load) == 1, "a load of an ONNX model no longer starts the worker"
    finally:
        host.kill()
