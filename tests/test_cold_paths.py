"""What a page waits for on a cold host (issue 12): ``hello`` never waits for the
provider probe, a loaded ONNX model starts the runtime worker ahead of the first
session, and ``webmodels serve`` imports no other command's code."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from methods.test_sessions import configure, upload
from support.contexts import PAGE_A
from support.host import HostProcess, webmodels_env
from support.runtime_models import identity_model, save
from webmodels.app import build_dispatcher, build_host
from webmodels.config import Config
from webmodels.context import RequestContext
from webmodels.protocol.envelope import Request
from webmodels.runtime.probe import ProbeResult, ProviderProbe

CPU = "CPUExecutionProvider"


def test_hello_on_a_fresh_store_does_not_wait_for_the_provider_probe(tmp_path: Path) -> None:
    host = build_host(Config(home=tmp_path / "home", log_dir=tmp_path / "logs"))
    release = threading.Event()

    def slow_probe(timeout_s: float) -> ProbeResult:  # the seam: a probe that hangs
        release.wait(120)
        return ProbeResult("1.31.1", (CPU,), (CPU,))

    host.probe = ProviderProbe(runner=slow_probe).start()
    dispatcher = build_dispatcher(host)

    def hello() -> dict[str, object]:
        request = Request(id=1, method="hello", params={}, context=None)
        reply = dispatcher.handle(request, RequestContext.trusted_local())
        assert reply["ok"], reply
        result: dict[str, object] = reply["result"]
        return result

    try:
        with ThreadPoolExecutor(1) as pool:
            # A guard against hanging, not a speed bound: the probe answers only
            # after hello did.
            first = pool.submit(hello).result(timeout=20)
        assert first["providers"] == [] and first["providers_pending"] is True
        release.set()
        host.probe.result(30)
        after = hello()
        assert after["providers"] == [CPU] and after["providers_pending"] is False
    finally:
        release.set()
        host.close()


def test_a_session_after_a_load_finds_its_worker_started(home: Path, tmp_path: Path) -> None:
    configure(home, background_compile=False)
    host = HostProcess(home)
    try:
        digest = upload(
            host, save(identity_model("float32"), tmp_path / "id.onnx").read_bytes(), PAGE_A
        )
        host.result("models.load", {"query": {"sha256": digest}}, context=PAGE_A)
        deadline = time.monotonic() + 60
        while not re.findall(r"(?<!background )runtime worker \d+ started", host.logged()):
            assert time.monotonic() < deadline, "no runtime worker started after the load"
            time.sleep(0.1)
        host.result("sessions.create", {"sha256": digest}, context=PAGE_A)
        workers = re.findall(r"(?<!background )runtime worker (\d+) started", host.logged())
        print("runtime workers started:", workers)
        assert len(workers) == 1  # the session went to the worker started ahead
    finally:
        host.kill()


def test_serve_imports_no_other_command(home: Path) -> None:
    code = (
        "import sys\n"
        "from webmodels.cli.main import main\n"
        "try:\n"
        "    main(['serve', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('webmodels.cli'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=webmodels_env(home),
        timeout=120,
        check=True,
    )
    loaded = done.stdout.strip().splitlines()[-1].split()
    print("cli modules imported by serve:", loaded)
    assert "webmodels.cli.serve_cmd" in loaded
    for other in ("catalog_cmd", "registration_cmd", "fetch_cmd", "doctor_cmd", "store_cmd"):
        assert f"webmodels.cli.{other}" not in loaded
