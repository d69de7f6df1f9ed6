"""The administrator's policy from a macOS property list and from the Windows registry
means what the TOML policy means: the same locked-key cases as tests/test_policy.py.

The property lists are real files read by the real reader (at a path a test chooses).
The registry cannot be read here: its values go through the same decoding and mapping
(`registry_document`) the Windows reader feeds, and only the few lines that enumerate
``HKLM\\Software\\Policies\\webmodels`` with ``winreg`` run on Windows alone."""

from __future__ import annotations

import json
import plistlib
from pathlib import Path
from typing import Any

import pytest

from test_policy import CASES, Case, _value
from webmodels import managed
from webmodels.cli.doctor_cmd import check_settings
from webmodels.config import Config, Flags, load_config
from webmodels.errors import HostError
from webmodels.managed import read_policy
from webmodels.policy_sources import (
    REG_DWORD,
    REG_MULTI_SZ,
    REG_SZ,
    registry_document,
)


def _env(tmp_path: Path, case: Case, policy: Path | None) -> dict[str, str]:
    user = tmp_path / "user.toml"
    user.write_text(f"{case.key} = {json.dumps(case.user)}\n")
    env = {"WEBMODELS_CONFIG": str(user), **case.env}
    if policy is not None:
        env["WEBMODELS_POLICY"] = str(policy)
    if case.key != "home":
        env.setdefault("WEBMODELS_HOME", str(tmp_path / "home"))
    return env


def _plist(tmp_path: Path, case: Case, *, locked: bool) -> Config:
    policy = tmp_path / "org.webmodels.plist"
    entry = {"value": case.admin, "locked": True} if locked else case.admin
    policy.write_bytes(plistlib.dumps({case.key: entry}))
    return load_config(Flags(**case.flags), env=_env(tmp_path, case, policy))


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_a_locked_plist_key_wins_over_user_config_flags_and_env(tmp_path: Path, case: Case) -> None:
    config = _plist(tmp_path, case, locked=True)
    assert _value(config, case.key) == case.admin
    assert config.sources[case.key] == "policy (locked)"
    assert config.policy.kind == "property list"


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_an_unlocked_plist_key_is_only_a_default(tmp_path: Path, case: Case) -> None:
    config = _plist(tmp_path, case, locked=False)
    assert _value(config, case.key) != case.admin
    assert config.sources[case.key] in ("user config", "command line", "environment")


def _registry_value(value: Any) -> tuple[object, int]:
    """How an administrator writes `value` in the registry (regedit, Group Policy)."""
    if isinstance(value, list):
        return [str(v) for v in value], REG_MULTI_SZ
    if isinstance(value, int):
        return value, REG_DWORD
    if isinstance(value, float):
        return json.dumps(value), REG_SZ
    return str(value), REG_SZ


def _registry(
    tmp_path: Path, case: Case, monkeypatch: pytest.MonkeyPatch, *, locked: bool
) -> Config:
    data, kind = _registry_value(case.admin)
    values = [(case.key, data, kind)]
    document = registry_document(values if locked else [], [] if locked else values)
    monkeypatch.setattr(managed, "read_registry", lambda: document)
    return load_config(Flags(**case.flags), env=_env(tmp_path, case, None))


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_a_locked_registry_value_wins_over_user_config_flags_and_env(
    tmp_path: Path, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _registry(tmp_path, case, monkeypatch, locked=True)
    assert _value(config, case.key) == case.admin
    assert config.sources[case.key] == "policy (locked)"
    assert config.policy.source == "HKLM\\Software\\Policies\\webmodels"


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_a_recommended_registry_value_is_only_a_default(
    tmp_path: Path, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _registry(tmp_path, case, monkeypatch, locked=False)
    assert _value(config, case.key) != case.admin
    assert config.sources[case.key] in ("user config", "command line", "environment")


def test_registry_values_decode_to_policy_values() -> None:
    document = registry_document(
        [
            ("privacy_mode", "strict", REG_SZ),
            ("catalogs", '[{"file": "/srv/c.json", "key": "K"}]', REG_SZ),
        ],
        [("privacy_mode", "relaxed", REG_SZ), ("probe_budget", 4, REG_DWORD)],
    )
    assert document == {
        "privacy_mode": {"value": "strict", "locked": True},
        "catalogs": {"value": [{"file": "/srv/c.json", "key": "K"}], "locked": True},
        "probe_budget": 4,
    }
    with pytest.raises(HostError, match="not supported"):
        registry_document([("x", b"\0", 3)], [])  # REG_BINARY


def test_a_system_plist_wins_over_the_environment_and_doctor_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "Managed Preferences" / "org.webmodels.plist"
    system.parent.mkdir()
    system.write_bytes(plistlib.dumps({"privacy_mode": {"value": "strict", "locked": True}}))
    other = tmp_path / "mine.toml"
    other.write_text("")
    policy = read_policy({"WEBMODELS_POLICY": str(other)}, system_files=[system])
    assert (policy.path, policy.kind, policy.locked) == (system, "property list", {"privacy_mode"})
    with pytest.raises(HostError, match="Managed Preferences"):
        policy.check_unlocked("privacy_mode")
    monkeypatch.setenv("WEBMODELS_POLICY", str(system))
    monkeypatch.setenv("WEBMODELS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WEBMODELS_CONFIG", str(tmp_path / "none.toml"))
    check = check_settings(load_config())
    assert f"policy {system} (property list)" in check.summary
    assert check.details["policy_kind"] == "property list"


def test_a_broken_plist_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "org.webmodels.plist"
    broken.write_bytes(b"<?xml version='1.0'?><plist><dict><key>x</key>")
    with pytest.raises(HostError, match="cannot read policy file"):
        read_policy({"WEBMODELS_POLICY": str(broken)}, system_files=[])
