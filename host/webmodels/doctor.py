"""``webmodels doctor``: checks that say what is wrong and the command that fixes it.

A check is a function that takes no arguments and returns a `Check` (or several).
`run_doctor` runs the built-in runtime checks (Python, the ONNX Runtime
distribution, the execution providers), then the ``extra_checks`` it is given, and
always finishes: a check that raises becomes a "fail" `Check` of its own.

Adding checks (registration, store health, ...) needs no change here: write a
function returning `Check` or ``Sequence[Check]`` and pass it in ``extra_checks``
(bind what it needs first, e.g. ``functools.partial(check_store, config)``). Give
each `Check` a stable ``name``: scripts read ``webmodels doctor --json`` by name.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from webmodels.config import Config
from webmodels.runtime.distributions import (
    GPU_DISTRIBUTION,
    DistributionReport,
    check_installed_distributions,
    pip_command,
    reinstall_command,
)
from webmodels.runtime.probe import CPU, ProbeResult, ProviderProbe

Status = Literal["ok", "warn", "fail"]
CheckFn = Callable[[], "Check | Sequence[Check]"]

MIN_PYTHON = (3, 11)  # pyproject.toml's requires-python
# Providers that put work on a GPU; a machine with a GPU should have one of them.
GPU_PROVIDERS = frozenset(
    {
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "ROCMExecutionProvider",
        "MIGraphXExecutionProvider",
        "DmlExecutionProvider",
    }
)


@dataclass(frozen=True)
class Check:
    name: str  # stable, snake_case: scripts look checks up by it
    status: Status
    summary: str  # one line: what was found
    fix: str | None = None  # what to do (a command line when there is one)
    details: Mapping[str, Any] = field(default_factory=dict)  # JSON-serialisable

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "fix": self.fix,
            "details": dict(self.details),
        }


def check_python() -> Check:
    version = ".".join(str(n) for n in sys.version_info[:3])
    details = {
        "version": version,
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": f"{sys.platform} {platform.machine()}",
    }
    summary = f"Python {version} ({details['implementation']}, {details['platform']})"
    if sys.version_info[:2] < MIN_PYTHON:
        need = ".".join(str(n) for n in MIN_PYTHON)
        fix = f"install Python {need} or newer and reinstall webmodels with it"
        return Check("python", "fail", f"{summary}: webmodels needs {need}+", fix, details)
    if sys.maxsize <= 2**32:
        fix = "install a 64-bit Python: ONNX Runtime publishes no 32-bit wheels"
        return Check("python", "warn", f"{summary}, 32-bit", fix, details)
    return Check("python", "ok", summary, details=details)


def check_onnxruntime(report: DistributionReport | None = None) -> Check:
    """The installed distribution is the right one and intact, and it imports."""
    report = check_installed_distributions() if report is None else report
    details: dict[str, Any] = report.to_json()
    if report.problem in ("missing", "conflict", "damaged"):
        return Check("onnxruntime", "fail", report.summary, report.fix, details)
    imported = _import_version()
    details["imported_version"] = imported
    version = report.installed[0].version
    if imported.startswith("error:"):
        summary = f"{report.summary}, but import onnxruntime fails ({imported[7:]})"
        fix = _reinstall_fix(report)
        return Check("onnxruntime", "fail", summary, fix, details)
    if imported != version:
        summary = f"{report.summary}, but the onnxruntime/ folder holds {imported}"
        return Check("onnxruntime", "fail", summary, _reinstall_fix(report), details)
    if report.problem == "unexpected":
        return Check("onnxruntime", "warn", report.summary, report.fix, details)
    return Check("onnxruntime", "ok", report.summary, details=details)


def _import_version() -> str:
    """``onnxruntime.__version__``, or ``"error: ..."``. Importing does not load the
    provider libraries (sessions do), so this is safe in the doctor's own process."""
    try:
        import onnxruntime

        return str(onnxruntime.__version__)
    except Exception as exc:
        return f"error: {type(exc).__name__}: {exc}"


def _reinstall_fix(report: DistributionReport) -> str:
    # The metadata looks fine but the files are another wheel's: reinstall cleanly.
    return reinstall_command(report.installed, expected=report.expected, pip=pip_command())


def check_providers(probe: ProbeResult, *, gpu_present: bool | None = None) -> Check:
    """At least one provider runs a model; on a machine with an NVIDIA GPU, a GPU
    provider should too (``gpu_present`` None: look for one)."""
    details = probe.to_json()
    if not probe.usable:
        summary = f"no execution provider works: {probe.error or 'every provider failed'}"
        fix = (
            "run `python -m webmodels.runtime.probe` to see the error, then reinstall ONNX Runtime"
        )
        return Check("providers", "fail", summary, fix, details)
    unusable = [p for p in probe.available if p not in probe.usable]
    summary = "usable: " + ", ".join(probe.usable)
    if unusable:
        summary += "; listed but not usable: " + ", ".join(unusable)
    has_gpu = nvidia_gpu_present() if gpu_present is None else gpu_present
    details["gpu_present"] = has_gpu
    if not has_gpu and GPU_PROVIDERS.intersection(unusable):
        summary += " (no NVIDIA GPU found)"
    if has_gpu and not GPU_PROVIDERS.intersection(probe.usable):
        summary += " (an NVIDIA GPU is present)"
        return Check("providers", "warn", summary, _gpu_fix(probe), details)
    if CPU not in probe.usable:
        fix = "the CPU provider always works in a sound install: reinstall ONNX Runtime"
        return Check("providers", "warn", summary, fix, details)
    return Check("providers", "ok", summary, details=details)


def _gpu_fix(probe: ProbeResult) -> str:
    version = f"=={probe.ort_version}" if probe.ort_version else ""
    reason = probe.failures.get("CUDAExecutionProvider")
    why = f" ({reason})" if reason else ""
    return (
        f"install the CUDA and cuDNN libraries this ONNX Runtime needs{why}, e.g. "
        f'{pip_command()} install "{GPU_DISTRIBUTION}[cuda,cudnn]{version}" '
        "or NVIDIA's CUDA toolkit and cuDNN"
    )


def nvidia_gpu_present() -> bool:
    """A hint, not proof: the NVIDIA driver is loaded (Linux) or installed (Windows)."""
    import shutil
    from pathlib import Path

    if sys.platform.startswith("linux"):
        return Path("/proc/driver/nvidia/gpus").is_dir() or Path("/dev/nvidia0").exists()
    if sys.platform == "win32":
        return shutil.which("nvidia-smi") is not None
    return False


def run_doctor(
    config: Config,
    extra_checks: Sequence[CheckFn] = (),
    *,
    probe: ProbeResult | ProviderProbe | None = None,
    probe_timeout_s: float = 60.0,
) -> list[Check]:
    """Run every check, built-in ones first, and return all results in order.

    ``config`` is the resolved configuration of the command; the built-in runtime
    checks do not depend on it (extra checks bind it themselves). ``probe`` reuses
    a provider probe already run or running (the host starts one at launch);
    otherwise one is started here, in a child process, while the other checks run.
    """
    running = probe if probe is not None else ProviderProbe(timeout_s=probe_timeout_s).start()

    def providers() -> Check:  # named so that a failure here is reported as "providers"
        result = running.result() if isinstance(running, ProviderProbe) else running
        return check_providers(result or ProbeResult.failed("the probe gave no result"))

    builtin: list[CheckFn] = [check_python, check_onnxruntime, providers]
    results: list[Check] = []
    for check in [*builtin, *extra_checks]:
        results.extend(run_check(check))
    return results


def run_check(check: CheckFn) -> list[Check]:
    """Run one check; whatever it raises becomes a "fail" `Check`."""
    try:
        outcome = check()
        checks = [outcome] if isinstance(outcome, Check) else list(outcome)
        if not all(isinstance(c, Check) for c in checks):
            raise TypeError("a check must return Check or a sequence of Check")
    except Exception as exc:
        name = _check_name(check)
        summary = f"the check itself failed: {type(exc).__name__}: {exc}"
        fix = "this is a bug in webmodels; please report it with this output"
        return [Check(name, "fail", summary, fix, {"exception": type(exc).__name__})]
    return checks


def _check_name(check: CheckFn) -> str:
    """``check_store`` -> "store"; a partial is named after its function."""
    inner = getattr(check, "func", check)
    name = str(getattr(inner, "__name__", "check")).removeprefix("check_")
    return name if name.isidentifier() else "check"


def doctor_ok(checks: Sequence[Check]) -> bool:
    """True when no check failed (warnings allowed)."""
    return all(c.status != "fail" for c in checks)
