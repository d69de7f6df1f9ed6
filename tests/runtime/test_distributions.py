"""The ONNX Runtime distribution conflict, decided from what is installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from webmodels.runtime.distributions import (
    CPU_DISTRIBUTION,
    GPU_DISTRIBUTION,
    InstalledDistribution,
    analyse_distributions,
    expected_distribution,
    is_runtime_distribution,
    read_installed_distributions,
    required_files,
)

CUDA_LIB = "onnxruntime/capi/libonnxruntime_providers_cuda.so"


def dist(name: str, version: str = "1.31.1", *missing: str) -> InstalledDistribution:
    return InstalledDistribution(name, version, tuple(missing))


def test_both_cpu_and_gpu_installed_is_a_conflict_fixed_by_a_clean_reinstall() -> None:
    report = analyse_distributions(
        [dist("onnxruntime-gpu", "1.31.1"), dist("onnxruntime", "1.20.0")],
        expected=GPU_DISTRIBUTION,
    )
    assert report.problem == "conflict"
    assert not report.ok
    assert "onnxruntime 1.20.0 and onnxruntime-gpu 1.31.1" in report.summary
    assert report.fix == (
        "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu==1.31.1"
    )


def test_conflict_without_the_expected_distribution_installs_it_unpinned() -> None:
    report = analyse_distributions(
        [dist("onnxruntime", "1.20.0"), dist("onnxruntime-directml", "1.20.0")],
        expected=CPU_DISTRIBUTION,
    )
    assert report.problem == "conflict"
    assert report.fix == (
        "pip uninstall -y onnxruntime onnxruntime-directml && pip install onnxruntime==1.20.0"
    )
    report = analyse_distributions(
        [dist("ort-nightly-gpu", "1.32.0.dev1"), dist("onnxruntime-openvino")],
        expected=GPU_DISTRIBUTION,
    )
    assert report.fix == (
        "pip uninstall -y onnxruntime-openvino ort-nightly-gpu && pip install onnxruntime-gpu"
    )


def test_gpu_distribution_without_its_cuda_library_is_damaged() -> None:
    report = analyse_distributions([dist("onnxruntime-gpu", "1.31.1", CUDA_LIB)], expected="x")
    assert report.problem == "damaged"
    assert CUDA_LIB in report.summary
    assert report.fix == "pip uninstall -y onnxruntime-gpu && pip install x"


def test_damaged_summary_names_a_few_missing_files_and_counts_the_rest() -> None:
    missing = [f"onnxruntime/f{i}.py" for i in range(10)]
    report = analyse_distributions(
        [dist("onnxruntime", "1.20.0", *missing)], expected=CPU_DISTRIBUTION, pip="py -m pip"
    )
    assert "onnxruntime/f0.py, onnxruntime/f1.py, onnxruntime/f2.py and 7 more" in report.summary
    assert (
        report.fix == "py -m pip uninstall -y onnxruntime && py -m pip install onnxruntime==1.20.0"
    )


def test_single_healthy_expected_distribution_is_ok() -> None:
    report = analyse_distributions([dist("onnxruntime-gpu", "1.31.1")], expected=GPU_DISTRIBUTION)
    assert report.ok
    assert report.summary == "onnxruntime-gpu 1.31.1"
    assert report.fix is None


def test_cpu_wheel_where_the_gpu_wheel_belongs_is_flagged_with_the_swap() -> None:
    report = analyse_distributions([dist("onnxruntime", "1.31.1")], expected=GPU_DISTRIBUTION)
    assert report.problem == "unexpected"
    assert report.fix == "pip uninstall -y onnxruntime && pip install onnxruntime-gpu"


def test_nothing_installed_says_what_to_install() -> None:
    report = analyse_distributions([], expected=CPU_DISTRIBUTION)
    assert report.problem == "missing"
    assert report.fix == "pip install onnxruntime"


@pytest.mark.parametrize(
    ("sys_platform", "machine", "expected"),
    [
        ("linux", "x86_64", GPU_DISTRIBUTION),
        ("win32", "AMD64", GPU_DISTRIBUTION),
        ("darwin", "arm64", CPU_DISTRIBUTION),
        ("darwin", "x86_64", CPU_DISTRIBUTION),
        ("linux", "aarch64", CPU_DISTRIBUTION),
        ("win32", "ARM64", CPU_DISTRIBUTION),
    ],
)
def test_expected_distribution_follows_pyproject_markers(
    sys_platform: str, machine: str, expected: str
) -> None:
    assert expected_distribution(sys_platform, machine) == expected


def test_fix_names_the_platform_distribution() -> None:
    both = [dist("onnxruntime"), dist("onnxruntime-gpu")]
    linux = analyse_distributions(both, expected=expected_distribution("linux", "x86_64"))
    mac = analyse_distributions(both, expected=expected_distribution("darwin", "arm64"))
    assert linux.fix is not None and linux.fix.endswith("pip install onnxruntime-gpu==1.31.1")
    assert mac.fix is not None and mac.fix.endswith("pip install onnxruntime==1.31.1")


def test_which_distributions_share_the_onnxruntime_folder() -> None:
    assert is_runtime_distribution("onnxruntime_gpu")
    assert is_runtime_distribution("ONNXRuntime-DirectML")
    assert is_runtime_distribution("ort-nightly-gpu")
    assert not is_runtime_distribution("onnxruntime-extensions")
    assert not is_runtime_distribution("onnxruntime-genai")
    assert not is_runtime_distribution("onnx")


def test_gpu_wheels_must_carry_the_cuda_provider_library() -> None:
    assert required_files("onnxruntime-gpu", "linux") == (CUDA_LIB,)
    assert required_files("onnxruntime-gpu", "win32") == (
        "onnxruntime/capi/onnxruntime_providers_cuda.dll",
    )
    assert required_files("onnxruntime", "linux") == ()
    assert required_files("onnxruntime-gpu", "darwin") == ()


def test_this_environment_has_one_intact_runtime_distribution() -> None:
    installed = read_installed_distributions()
    assert len(installed) == 1
    assert installed[0].missing_files == ()


def fake_site(site: Path, name: str, version: str, files: dict[str, bool]) -> None:
    """A dist-info whose RECORD lists ``files``; those mapped to True exist."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    record = [f"{f},sha256=x,1" for f in files] + [
        f"{info.name}/METADATA,,",
        f"{info.name}/RECORD,,",
    ]
    (info / "RECORD").write_text("\n".join(record) + "\n")
    for file, exists in files.items():
        if exists:
            (site / file).parent.mkdir(parents=True, exist_ok=True)
            (site / file).write_bytes(b"")


def test_reader_finds_files_another_wheel_removed(tmp_path: Path) -> None:
    # onnxruntime-gpu installed, the CPU wheel installed over it, then uninstalled:
    # the shared files and the CUDA library are gone, the GPU metadata remains.
    files = {"onnxruntime/__init__.py": False, CUDA_LIB: False, "onnxruntime/tools/a.py": True}
    fake_site(tmp_path, "onnxruntime_gpu", "1.31.1", files)
    fake_site(tmp_path, "onnxruntime-extensions", "0.1", {"onnxruntime_extensions/x.py": False})
    (found,) = read_installed_distributions(path=[str(tmp_path)], sys_platform="linux")
    assert found.name == "onnxruntime-gpu"
    assert set(found.missing_files) == {"onnxruntime/__init__.py", CUDA_LIB}


def test_reader_requires_the_cuda_library_even_when_record_omits_it(tmp_path: Path) -> None:
    fake_site(tmp_path, "onnxruntime-gpu", "1.31.1", {"onnxruntime/__init__.py": True})
    (found,) = read_installed_distributions(path=[str(tmp_path)], sys_platform="linux")
    assert found.missing_files == (CUDA_LIB,)
    report = analyse_distributions([found], expected=GPU_DISTRIBUTION)
    assert report.problem == "damaged"


def test_reader_lists_every_runtime_distribution_sharing_the_folder(tmp_path: Path) -> None:
    fake_site(tmp_path, "onnxruntime", "1.20.0", {"onnxruntime/__init__.py": True})
    fake_site(tmp_path, "onnxruntime-gpu", "1.31.1", {"onnxruntime/__init__.py": True})
    found = read_installed_distributions(path=[str(tmp_path)], sys_platform="darwin")
    assert [(d.name, d.version, d.missing_files) for d in found] == [
        ("onnxruntime", "1.20.0", ()),
        ("onnxruntime-gpu", "1.31.1", ()),
    ]
    report = analyse_distributions(found, expected=CPU_DISTRIBUTION)
    assert report.problem == "conflict"
