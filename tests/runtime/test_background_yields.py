"""Background compilation yields to pages (issue 12): its worker is a process of its
own at the lowest CPU and I/O priority, it waits until pages are idle, and it compiles
only models a session is expected for."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from methods.test_sessions import configure, upload
from support.contexts import PAGE_A, PAGE_B
from support.host import HostProcess
from support.models import real_model, tiny_model
from webmodels.config import Config
from webmodels.runtime.probe import ProbeResult, ProviderProbe
from webmodels.runtime.sessions import SessionManager
from webmodels.runtime.settings import SessionSettings
from webmodels.store.store import Store

CPU = "CPUExecutionProvider"


def nice_of(pid: int) -> int:
    """Field 19 of /proc/PID/stat (after the command name, which may hold spaces)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


def ionice_of(pid: int) -> str:
    return subprocess.run(
        ["ionice", "-p", str(pid)], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_compile_worker_is_a_process_of_its_own_at_idle_cpu_and_io_priority(
    tmp_path: Path,
) -> None:
    store = Store.open(Config(home=tmp_path / "home", log_dir=tmp_path / "logs"))
    probe = ProviderProbe(runner=lambda timeout: ProbeResult("1.31.1", (CPU,), (CPU,)))
    sessions = SessionManager(store, probe, SessionSettings(background_compile=False))
    try:
        page = sessions.runtime.worker()  # the one that serves page sessions
        compiler = sessions.compiler.runtime.worker()  # the background compiler's
        print("page worker", page.pid, nice_of(page.pid), ionice_of(page.pid))
        print("compile worker", compiler.pid, nice_of(compiler.pid), ionice_of(compiler.pid))
        assert compiler.pid != page.pid
        assert nice_of(compiler.pid) == 19
        assert ionice_of(compiler.pid) == "idle"
        assert nice_of(page.pid) == os.getpriority(os.PRIO_PROCESS, 0)  # the host's own
        assert ionice_of(page.pid) != "idle"
    finally:
        sessions.close()
        store.close()


def compiled_line(digest: str) -> str:
    return f"compiled {digest[:12]}"


def wait_in_log(host: HostProcess, text: str, timeout_s: float = 120.0) -> str:
    """Wait by reading the log file: no request, so the host stays idle meanwhile."""
    deadline = time.monotonic() + timeout_s
    while text not in (logged := host.logged()):
        assert time.monotonic() < deadline, f"never logged: {text}"
        time.sleep(0.1)
    return logged


def test_a_compile_waits_while_page_requests_keep_arriving(home: Path) -> None:
    configure(home, background_delay_s=0, background_idle_s=2.0)
    host = HostProcess(home)
    try:
        digest = upload(host, real_model("magika").read_bytes(), PAGE_A)
        load = {"query": {"sha256": digest}, "compile": True}
        host.result("models.load", load, context=PAGE_A)
        for _ in range(15):  # a page at work: a request every 0.1 s
            host.result("models.list", context=PAGE_A)
            assert compiled_line(digest) not in host.logged(), "compiled beside a busy page"
            time.sleep(0.1)
        logged = wait_in_log(host, compiled_line(digest))
        deferred = logged.index(f"background compile of {digest[:12]} deferred")
        assert deferred < logged.index(compiled_line(digest))
        started = [m.start() for m in re.finditer(r"background runtime worker \d+ started", logged)]
        # started for the compile (and, with segments on, the graph's rewrite at publish:
        # runtime/segment_publish.py), after the page went quiet
        assert started and all(at > deferred for at in started)
        created = host.result("sessions.create", {"sha256": digest}, context=PAGE_A)
        assert created["compiled_cache_hit"] is True
    finally:
        host.kill()


def test_only_models_a_session_is_expected_for_are_compiled(home: Path, tmp_path: Path) -> None:
    configure(home, background_delay_s=0, background_idle_s=0.3)
    host = HostProcess(home)
    try:
        plain = tiny_model(tmp_path / "plain.onnx", seed=3).read_bytes()
        wanted = tiny_model(tmp_path / "wanted.onnx", seed=4).read_bytes()  # not common
        plain_digest = upload(host, plain, PAGE_A)  # stored, never asked for a session
        wanted_digest = upload(host, wanted, PAGE_A)
        assert wanted_digest == upload(host, wanted, PAGE_B)  # strict: B's own copy
        load = {"query": {"sha256": wanted_digest}, "compile": True}
        host.result("models.load", load, context=PAGE_A)
        wait_in_log(host, compiled_line(wanted_digest))
        upload(host, b"not a model" * 1000, PAGE_A)  # never for non-ONNX files
        compiled = {
            m["sha256"]: m["compiled"] for m in host.result("models.list", context=PAGE_A)["models"]
        }
        print("partition A:", {d[:12]: c for d, c in compiled.items()})
        assert compiled[wanted_digest] is True
        assert compiled[plain_digest] is False
        in_b = host.result("models.list", context=PAGE_B)["models"]
        assert [m["compiled"] for m in in_b] == [False]  # compiled when B creates a session
        logged = host.logged()
        assert f"not compiling {plain_digest[:12]}" in logged
        assert compiled_line(plain_digest) not in logged
        assert len(re.findall(r"\ncompiled |compiled [0-9a-f]{12} for", logged)) == 1
        # B's first session compiles in B's scope, in the foreground.
        created = host.result("sessions.create", {"sha256": wanted_digest}, context=PAGE_B)
        assert created["compiled_cache_hit"] is False
    finally:
        host.kill()
