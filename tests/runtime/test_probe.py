"""The execution-provider probe, run for real in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from webmodels.runtime.probe import (
    CPU,
    ProbeResult,
    ProviderProbe,
    order_providers,
    probe_command,
    run_probe_subprocess,
)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_cpu_is_usable_and_every_unusable_provider_has_a_reason() -> None:
    result = run_probe_subprocess()
    assert result.error is None
    assert result.ort_version
    assert CPU in result.available
    assert CPU in result.usable
    assert result.usable[-1] == CPU
    for provider in result.available:
        if provider not in result.usable:
            assert result.failures[provider].strip(), provider
    assert set(result.usable) <= set(result.available)
    assert result.elapsed_ms > 0


def test_probe_module_prints_exactly_one_json_line() -> None:
    done = subprocess.run(probe_command(), capture_output=True, text=True, timeout=120, check=True)
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert ProbeResult.from_json(json.loads(lines[0])).usable


def test_a_crashing_probe_is_reported_not_raised() -> None:
    result = run_probe_subprocess(command=python("import os; os._exit(139)"))
    assert result.usable == ()
    assert result.error == "probe exited with status 139"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_probe_killed_by_a_signal_names_the_signal() -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    result = run_probe_subprocess(command=python(code))
    assert result.usable == ()
    assert result.error == "probe crashed (SIGSEGV)"


def test_a_hanging_probe_times_out() -> None:
    result = run_probe_subprocess(0.5, command=python("import time; time.sleep(30)"))
    assert result.usable == ()
    assert result.error == "probe timed out after 0.5 s"
    assert result.elapsed_ms < 10_000


def test_garbage_output_is_a_failure() -> None:
    result = run_probe_subprocess(command=python("print('hello')"))
    assert result.usable == ()
    assert result.error is not None and result.error.startswith("probe printed no result")


def test_a_probe_that_cannot_start_is_a_failure() -> None:
    result = run_probe_subprocess(command=["/nonexistent/python"])
    assert result.usable == ()
    assert result.error is not None and result.error.startswith("cannot start the probe")


def test_result_survives_a_json_round_trip() -> None:
    result = ProbeResult("1.31.1", ("CUDAExecutionProvider", CPU), (CPU,), {"CUDA": "no"}, 3.5)
    assert ProbeResult.from_json(json.loads(json.dumps(result.to_json()))) == result


@pytest.mark.parametrize(
    "value",
    [[], {"ort_version": 1}, {"ort_version": None, "error": None, "failures": {}}],
)
def test_malformed_json_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        ProbeResult.from_json(value)


def test_providers_are_ordered_tensorrt_cuda_others_cpu() -> None:
    names = [CPU, "DmlExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    assert order_providers(names) == (
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "DmlExecutionProvider",
        CPU,
    )


def test_provider_probe_runs_once_in_the_background() -> None:
    release = threading.Event()
    calls: list[float] = []

    def runner(timeout_s: float) -> ProbeResult:
        calls.append(timeout_s)
        release.wait(10)
        return ProbeResult("1", (CPU,), (CPU,))

    probe = ProviderProbe(timeout_s=7.0, runner=runner).start()
    probe.start()
    assert probe.result(0.05) is None
    assert not probe.done
    release.set()
    result = probe.result(10)
    assert result is not None and result.best == CPU
    assert calls == [7.0]


def test_provider_probe_turns_a_runner_exception_into_a_result() -> None:
    def runner(timeout_s: float) -> ProbeResult:
        raise RuntimeError("boom")

    result = ProviderProbe(runner=runner).result(10)
    assert result is not None
    assert result.usable == ()
    assert result.error == "probe failed: boom"
