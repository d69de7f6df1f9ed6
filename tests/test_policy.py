"""Managed policy: a locked system-wide setting wins over the user's config file, the
command line and the environment; an unlocked one is only a default (managed.py)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from privacy.signing import Signer, entry
from support.catalogs import CatalogSigner
from support.catalogs import entry as catalog_entry
from webmodels.app import build_commons
from webmodels.catalogs.deployed import install_deployed, parse_deployed
from webmodels.catalogs.keeper import installed
from webmodels.cli.doctor_cmd import check_settings
from webmodels.cli.main import main
from webmodels.config import Config, Flags, load_config
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.managed import parse_policy, read_policy
from webmodels.store import Store

KEY_A = "hCFqNNSEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
KEY_B = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB="


@dataclass(frozen=True)
class Case:
    key: str
    admin: Any  # the locked policy value
    user: Any  # what the user's config file says
    flags: dict[str, Any] = field(default_factory=dict)  # what the command line says
    env: dict[str, str] = field(default_factory=dict)  # what the environment says


def _toml(value: Any) -> str:
    return json.dumps(value)  # JSON strings, numbers and lists of them are TOML too


CASES = [
    Case("home", "/srv/webmodels", "/u/h", {"home": Path("/f/h")}, {"WEBMODELS_HOME": "/e/h"}),
    Case("log_dir", "/srv/logs", "/u/l", {"log_dir": Path("/f/l")}, {"WEBMODELS_LOG_DIR": "/e/l"}),
    Case(
        "preinstalled",
        ["/srv/models"],
        ["/u/models"],
        {"preinstalled": [Path("/f/models")]},
        {"WEBMODELS_PREINSTALLED": "/e/models"},
    ),
    Case("log_level", "WARNING", "DEBUG", {"log_level": "DEBUG"}, {"WEBMODELS_LOG_LEVEL": "ERROR"}),
    Case("local_network_origins", [], ["*"], env={"WEBMODELS_LOCAL_NETWORK_ORIGINS": "*"}),
    Case("privacy_mode", "strict", "relaxed"),
    Case("commons_keys", [KEY_A], [KEY_B]),
    Case("commons_lists", ["/srv/commons.json"], ["/u/commons.json"]),
    Case("probe_budget", 4, 400),
    Case("probe_window_hours", 48.0, 1.0),
    Case("download_without_activation_bytes", 1000, 10**12),
    Case("quota_per_partition_bytes", 1 << 30, 1 << 40),
    Case("quota_total_bytes", 50 << 30, 1 << 50),
    Case("quota_keep_free_fraction", 0.25, 0.0),
    Case("quarantine_days", 7.0, 365.0),
    Case("mirrors", ["oci://registry.example/models"], ["https://mine.example/by-hash/"]),
]


def _value(config: Config, key: str) -> Any:
    if key == "preinstalled":
        return [str(p) for p in config.preinstalled_dirs[:1]]
    if key in config.extra:  # a key this module does not know yet (mirrors)
        return config.extra[key]
    value = getattr(config, key)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [str(v) if isinstance(v, Path) else v for v in value]
    return value


def _load(tmp_path: Path, case: Case, *, locked: bool) -> Config:
    policy = tmp_path / "policy.toml"
    lock = "true" if locked else "false"
    policy.write_text(f"{case.key} = {{ value = {_toml(case.admin)}, locked = {lock} }}\n")
    user = tmp_path / "user.toml"
    user.write_text(f"{case.key} = {_toml(case.user)}\n")
    env = {"WEBMODELS_POLICY": str(policy), "WEBMODELS_CONFIG": str(user), **case.env}
    if case.key != "home":
        env.setdefault("WEBMODELS_HOME", str(tmp_path / "home"))
    return load_config(Flags(**case.flags), env=env)


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_a_locked_policy_wins_over_user_config_flags_and_env(tmp_path: Path, case: Case) -> None:
    config = _load(tmp_path, case, locked=True)
    assert _value(config, case.key) == case.admin
    assert config.sources[case.key] == "policy (locked)"


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_an_unlocked_policy_is_only_a_default(tmp_path: Path, case: Case) -> None:
    config = _load(tmp_path, case, locked=False)
    assert _value(config, case.key) != case.admin
    assert config.sources[case.key] in ("user config", "command line", "environment")


def test_a_deployed_policy_file_cannot_be_replaced_from_the_environment(tmp_path: Path) -> None:
    system = tmp_path / "etc.toml"
    system.write_text('privacy_mode = { value = "strict", locked = true }\n')
    other = tmp_path / "mine.toml"
    other.write_text("")
    policy = read_policy({"WEBMODELS_POLICY": str(other)}, system_files=[system])
    assert policy.path == system and policy.locked == {"privacy_mode"}
    assert (
        read_policy({"WEBMODELS_POLICY": str(other)}, system_files=[tmp_path / "no"]).path == other
    )


def test_a_malformed_policy_entry_is_refused() -> None:
    with pytest.raises(HostError, match="locked = true"):
        parse_policy({"privacy_mode": {"value": "strict", "locked": "yes"}})


def _locked_privacy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    policy = tmp_path / "policy.toml"
    policy.write_text('privacy_mode = { value = "strict", locked = true }\n')
    monkeypatch.setenv("WEBMODELS_POLICY", str(policy))
    monkeypatch.setenv("WEBMODELS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WEBMODELS_CONFIG", str(tmp_path / "none.toml"))
    return load_config()


def test_the_host_keeps_a_locked_privacy_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _locked_privacy(tmp_path, monkeypatch)
    with Store.open(config) as store:
        store.set_setting("privacy_mode", "relaxed")  # chosen before the policy came
        gate = build_commons(config, store)
        assert not gate.relaxed()
        with pytest.raises(HostError, match="set by your administrator") as refused:
            gate.set_mode("relaxed")  # what the popup's manage.settings.set calls
        assert refused.value.code == "access_denied"


def test_settings_set_refuses_a_locked_key_and_settings_and_doctor_name_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _locked_privacy(tmp_path, monkeypatch)
    assert main(["settings", "set", "privacy_mode", "relaxed"]) == 1
    assert "privacy_mode is set by your administrator" in capsys.readouterr().err
    assert main(["--json", "settings"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == {"privacy_mode": "strict", "sources": {"privacy_mode": "policy (locked)"}}
    check = check_settings(config)
    assert check.details["sources"]["privacy_mode"] == "policy (locked)"
    assert check.details["sources"]["quota_total_bytes"] == "default"
    assert "privacy_mode: policy (locked)" in check.summary


def test_a_commons_list_the_policy_names_is_in_force_for_every_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = Signer()
    model = b"a model every site of the organisation may use"
    listed = signer.write(tmp_path / "org-commons.json", 1, [entry(model)])
    policy = tmp_path / "policy.toml"
    keys = json.dumps(["project", signer.public])
    policy.write_text(
        f"commons_keys = {{ value = {keys}, locked = true }}\n"
        f'commons_lists = {{ value = ["{listed}"], locked = true }}\n'
    )
    user = tmp_path / "user.toml"
    user.write_text('commons_keys = ["project"]\ncommons_lists = []\n')  # cannot drop it
    monkeypatch.setenv("WEBMODELS_POLICY", str(policy))
    monkeypatch.setenv("WEBMODELS_CONFIG", str(user))
    monkeypatch.setenv("WEBMODELS_HOME", str(tmp_path / "home"))
    config = load_config()
    with Store.open(config) as store:
        gate = build_commons(config, store)
        assert Digest.parse(hashlib.sha256(model).hexdigest()) in {
            d for x in gate.in_force() for d in x.digests
        }


def test_a_catalog_the_policy_names_is_installed_when_the_host_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = CatalogSigner("acme")
    data = b"a model the organisation names"
    document = signer.write(tmp_path / "acme.json", 1, [catalog_entry(data, "acme/m", "1.0.0")])
    policy = tmp_path / "policy.toml"
    policy.write_text(
        f'catalogs = {{ value = [{{ file = "{document}", key = "{signer.public}" }}], '
        "locked = true }\n"
    )
    monkeypatch.setenv("WEBMODELS_POLICY", str(policy))
    monkeypatch.setenv("WEBMODELS_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("WEBMODELS_HOME", str(tmp_path / "home"))
    config = load_config()
    assert config.sources["catalogs"] == "policy (locked)"
    with Store.open(config) as store:
        install_deployed(store.index, parse_deployed(config.extra.get("catalogs")))
        assert [(i.catalog.name, i.catalog.version) for i in installed(store.index)] == [
            ("acme", 1)
        ]
