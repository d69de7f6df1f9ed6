"""`webmodels doctor`: the check framework, the runtime checks and the command."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

from webmodels.cli.doctor_cmd import format_report
from webmodels.config import Config
from webmodels.doctor import (
    Check,
    check_onnxruntime,
    check_providers,
    check_python,
    doctor_ok,
    run_check,
    run_doctor,
)
from webmodels.runtime.distributions import InstalledDistribution, analyse_distributions
from webmodels.runtime.probe import CPU, ProbeResult

CUDA = "CUDAExecutionProvider"
CPU_ONLY = ProbeResult("1.31.1", (CUDA, CPU), (CPU,), {CUDA: "session fell back to CPU"}, 5.0)


def config(tmp_path: Path) -> Config:
    return Config(home=tmp_path, log_dir=tmp_path / "logs")


def test_conflicting_distributions_fail_the_onnxruntime_check() -> None:
    both = [
        InstalledDistribution("onnxruntime", "1.20.0"),
        InstalledDistribution("onnxruntime-gpu", "1.31.1"),
    ]
    report = analyse_distributions(both, expected="onnxruntime-gpu")
    check = check_onnxruntime(report)
    assert check.status == "fail"
    assert check.fix == report.fix
    assert check.details["problem"] == "conflict"


def test_this_machine_has_a_working_onnxruntime_and_python() -> None:
    assert check_onnxruntime().status == "ok"
    assert check_python().status == "ok"


def test_cpu_only_without_a_gpu_is_ok() -> None:
    check = check_providers(CPU_ONLY, gpu_present=False)
    assert check.status == "ok"
    assert "usable: CPUExecutionProvider" in check.summary
    assert CUDA in check.summary


def test_cpu_only_with_an_nvidia_gpu_warns_how_to_get_cuda() -> None:
    check = check_providers(CPU_ONLY, gpu_present=True)
    assert check.status == "warn"
    assert check.fix is not None and "onnxruntime-gpu[cuda,cudnn]==1.31.1" in check.fix


def test_a_failed_probe_fails_the_providers_check() -> None:
    check = check_providers(ProbeResult.failed("probe crashed (SIGSEGV)"), gpu_present=False)
    assert check.status == "fail"
    assert "SIGSEGV" in check.summary


def test_a_check_that_raises_becomes_a_failed_check() -> None:
    def check_store() -> Check:
        raise OSError("disk on fire")

    (result,) = run_check(check_store)
    assert result.name == "store"
    assert result.status == "fail"
    assert "disk on fire" in result.summary


def test_extra_checks_run_after_the_builtin_ones_and_may_return_several(tmp_path: Path) -> None:
    def check_registration(browser: str) -> list[Check]:
        return [Check(f"registration_{browser}", "warn", "not registered", "webmodels install")]

    def check_broken() -> Check:
        raise RuntimeError("bug")

    checks = run_doctor(
        config(tmp_path),
        [functools.partial(check_registration, "chromium"), check_broken],
        probe=CPU_ONLY,
    )
    names = [c.name for c in checks]
    assert names == ["python", "onnxruntime", "providers", "registration_chromium", "broken"]
    assert not doctor_ok(checks)
    assert doctor_ok(checks[:4])


def test_report_lists_checks_then_fixes() -> None:
    text = format_report(
        [Check("python", "ok", "Python 3.11"), Check("store", "fail", "gone", "run this")]
    )
    lines = text.splitlines()
    assert lines[0].startswith("[ok]") and "python" in lines[0]
    assert lines[1].startswith("[FAIL]") and "gone" in lines[1]
    assert "  store: run this" in lines
    assert lines[-1] == "1 check(s) failed, 0 warning(s)."


def test_doctor_command_reports_runtime_checks_ok(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "WEBMODELS_HOME": str(tmp_path),
        "WEBMODELS_CONFIG": str(tmp_path / "c.toml"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "webmodels", "doctor", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    report = json.loads(done.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["onnxruntime"]["status"] == "ok", by_name["onnxruntime"]
    assert by_name["providers"]["status"] == "ok", by_name["providers"]
    assert CPU in by_name["providers"]["details"]["usable"]
    assert done.returncode == (0 if report["ok"] else 1)


def test_a_check_returning_something_else_becomes_a_failed_check() -> None:
    def check_odd() -> Check:
        return [1]  # type: ignore[return-value]

    (result,) = run_check(check_odd)
    assert (result.name, result.status) == ("odd", "fail")
