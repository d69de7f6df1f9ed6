"""Which ONNX Runtime distribution is installed, and whether another one broke it.

Every ONNX Runtime wheel (``onnxruntime``, ``onnxruntime-gpu``, ``-directml``,
``-openvino``, the ``ort-nightly*`` builds, ...) installs into the same
``onnxruntime/`` folder. pip treats them as unrelated projects, so installing a
second one silently overwrites the first one's files, and uninstalling either one
deletes files the other still lists. Seen on our own machines: installing a package
that depends on the CPU ``onnxruntime`` replaced ``onnxruntime-gpu``'s files.

pyproject.toml picks ``onnxruntime-gpu`` on x86-64 Linux and Windows and
``onnxruntime`` everywhere else; `expected_distribution` applies the same rule.

`analyse_distributions` is pure (it is given what is installed); only
`read_installed_distributions` looks at the real environment.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

CPU_DISTRIBUTION = "onnxruntime"
GPU_DISTRIBUTION = "onnxruntime-gpu"

# Distributions that install the `onnxruntime/` package (normalised names, PEP 503).
# `onnxruntime-extensions` and `onnxruntime-genai` use folders of their own: not here.
RUNTIME_DISTRIBUTIONS = frozenset(
    {
        "onnxruntime",
        "onnxruntime-gpu",
        "onnxruntime-directml",
        "onnxruntime-openvino",
        "onnxruntime-qnn",
        "onnxruntime-rocm",
        "onnxruntime-training",
    }
)
NIGHTLY_PREFIX = "ort-nightly"  # ort-nightly, ort-nightly-gpu, ort-nightly-directml

# The CUDA provider library a GPU wheel ships; without it the GPU wheel is a CPU one.
_CUDA_PROVIDER_LIBRARY = {
    "linux": "onnxruntime/capi/libonnxruntime_providers_cuda.so",
    "win32": "onnxruntime/capi/onnxruntime_providers_cuda.dll",
}
_SHOWN_MISSING = 3  # missing files named in a summary; the rest are counted

Problem = Literal["ok", "missing", "conflict", "damaged", "unexpected"]


@dataclass(frozen=True, slots=True)
class InstalledDistribution:
    """One installed ONNX Runtime distribution, as its metadata describes it."""

    name: str  # normalised: lower case, runs of "-_." as one "-"
    version: str
    missing_files: tuple[str, ...] = ()  # listed in its RECORD (or required) but absent


@dataclass(frozen=True, slots=True)
class DistributionReport:
    installed: tuple[InstalledDistribution, ...]
    expected: str  # the distribution pyproject.toml installs on this platform
    problem: Problem
    summary: str
    fix: str | None = None  # a command line to run, when there is a problem

    @property
    def ok(self) -> bool:
        return self.problem == "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "installed": [
                {
                    "name": d.name,
                    "version": d.version,
                    "missing_files": list(d.missing_files[:20]),
                    "missing_count": len(d.missing_files),
                }
                for d in self.installed
            ],
            "expected": self.expected,
            "problem": self.problem,
        }


def normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def is_runtime_distribution(name: str) -> bool:
    normal = normalize_name(name)
    return normal in RUNTIME_DISTRIBUTIONS or normal.startswith(NIGHTLY_PREFIX)


def expected_distribution(sys_platform: str, machine: str) -> str:
    """The rule of pyproject.toml's environment markers, for these two values."""
    if sys_platform in ("linux", "win32") and machine in ("x86_64", "AMD64"):
        return GPU_DISTRIBUTION
    return CPU_DISTRIBUTION


def required_files(name: str, sys_platform: str) -> tuple[str, ...]:
    """Files a distribution must have whatever its RECORD says."""
    library = _CUDA_PROVIDER_LIBRARY.get(sys_platform)
    is_gpu = normalize_name(name).endswith("-gpu")
    return (library,) if library and is_gpu else ()


def analyse_distributions(
    installed: Sequence[InstalledDistribution], *, expected: str, pip: str = "pip"
) -> DistributionReport:
    """Say whether the installed ONNX Runtime distributions are healthy, and if not
    the one command line that repairs them (``pip`` is how to call pip)."""
    found = tuple(sorted(installed, key=lambda d: d.name))
    if not found:
        return DistributionReport(
            found,
            expected,
            "missing",
            "no ONNX Runtime distribution is installed",
            fix=f"{pip} install {expected}",
        )
    fix = reinstall_command(found, expected=expected, pip=pip)
    if len(found) > 1:
        names = " and ".join(f"{d.name} {d.version}" for d in found)
        summary = (
            f"{names} are {'both' if len(found) == 2 else 'all'} installed; "
            "they share the onnxruntime/ folder "
            "and overwrite each other's files"
        )
        return DistributionReport(found, expected, "conflict", summary, fix=fix)
    only = found[0]
    if only.missing_files:
        return DistributionReport(found, expected, "damaged", _damaged_summary(only), fix=fix)
    if only.name != expected:
        summary = f"{only.name} {only.version} is installed, but this platform uses {expected}" + (
            " (GPU support)" if expected == GPU_DISTRIBUTION else ""
        )
        return DistributionReport(found, expected, "unexpected", summary, fix=fix)
    return DistributionReport(found, expected, "ok", f"{only.name} {only.version}")


def reinstall_command(
    installed: Sequence[InstalledDistribution], *, expected: str, pip: str = "pip"
) -> str:
    """Uninstall every runtime distribution, then install the expected one (at the
    version that was there, if it was): uninstalling one alone would leave the
    files it shared with the others deleted."""
    names = " ".join(shlex.quote(d.name) for d in installed)
    same = [d for d in installed if d.name == expected]
    target = f"{expected}=={same[0].version}" if same else expected
    return f"{pip} uninstall -y {names} && {pip} install {shlex.quote(target)}"


def _damaged_summary(dist: InstalledDistribution) -> str:
    shown = ", ".join(dist.missing_files[:_SHOWN_MISSING])
    more = len(dist.missing_files) - _SHOWN_MISSING
    extra = f" and {more} more" if more > 0 else ""
    return (
        f"{dist.name} {dist.version} is missing {shown}{extra}: another ONNX Runtime "
        "wheel overwrote or removed its files"
    )


# -- the real environment ---------------------------------------------------------


def read_installed_distributions(
    *, path: Sequence[str] | None = None, sys_platform: str | None = None
) -> tuple[InstalledDistribution, ...]:
    """The ONNX Runtime distributions found on ``path`` (default: sys.path); where
    one name is found twice, the first wins, as it does for imports."""
    platform_name = sys.platform if sys_platform is None else sys_platform
    search = list(sys.path if path is None else path)
    found: dict[str, InstalledDistribution] = {}
    for dist in importlib.metadata.distributions(path=search):
        name = normalize_name(dist.metadata["Name"] or "")
        if name in found or not is_runtime_distribution(name):
            continue
        missing = _missing_files(dist, required_files(name, platform_name))
        found[name] = InstalledDistribution(name, dist.version, missing)
    return tuple(sorted(found.values(), key=lambda d: d.name))


def _missing_files(
    dist: importlib.metadata.Distribution, required: Sequence[str]
) -> tuple[str, ...]:
    # Only the shared folder matters; compiled .pyc files come and go legitimately.
    listed = [
        f.as_posix()
        for f in dist.files or ()
        if f.as_posix().startswith("onnxruntime/") and f.suffix != ".pyc"
    ]
    wanted = listed + [r for r in required if r not in listed]
    return tuple(f for f in wanted if not Path(str(dist.locate_file(f))).exists())


def pip_command() -> str:
    """How to call the pip of this very interpreter (a bare ``pip`` may be another's)."""
    exe = sys.executable or "python"
    if sys.platform == "win32":
        return f'"{exe}" -m pip' if " " in exe else f"{exe} -m pip"
    return f"{shlex.quote(exe)} -m pip"


def check_installed_distributions() -> DistributionReport:
    """`analyse_distributions` applied to this interpreter and platform."""
    import platform

    expected = expected_distribution(sys.platform, platform.machine())
    return analyse_distributions(
        read_installed_distributions(), expected=expected, pip=pip_command()
    )
