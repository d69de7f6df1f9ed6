"""Configuration: flag > environment > config file > default, read once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from webmodels.config import Flags, load_config
from webmodels.errors import HostError


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_precedence(tmp_path: Path) -> None:
    config_file = write_config(
        tmp_path / "c.toml",
        f'home = "{tmp_path / "from-file"}"\npreinstalled = ["{tmp_path / "p-file"}"]\n'
        "system_preinstalled = false\n",
    )
    env = {"WEBMODELS_CONFIG": str(config_file)}
    assert load_config(env=env).home == tmp_path / "from-file"
    assert load_config(env=env).preinstalled_dirs == (tmp_path / "p-file",)
    env["WEBMODELS_HOME"] = str(tmp_path / "from-env")
    env["WEBMODELS_PREINSTALLED"] = f"{tmp_path / 'a'}:{tmp_path / 'b'}"
    config = load_config(env=env)
    assert config.home == tmp_path / "from-env"
    assert config.preinstalled_dirs == (tmp_path / "a", tmp_path / "b")
    flags = Flags(home=tmp_path / "from-flag", preinstalled=[tmp_path / "c"])
    config = load_config(flags, env=env)
    assert config.home == tmp_path / "from-flag"
    assert config.preinstalled_dirs == (tmp_path / "c",)
    assert config.store_dir == tmp_path / "from-flag" / "store-v2"
    assert config.log_dir == tmp_path / "from-flag" / "logs"


def test_defaults_use_platform_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # not this machine's store
    env = {"WEBMODELS_CONFIG": str(tmp_path / "absent.toml"), "HOME": str(tmp_path)}
    config = load_config(env=env)
    assert config.home.name == "webmodels" and config.store_dir.name == "store-v2"
    assert config.log_level == "INFO"


def test_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    config_file = write_config(tmp_path / "c.toml", "home = [1, 2\n")
    with pytest.raises(HostError) as caught:
        load_config(env={"WEBMODELS_CONFIG": str(config_file)})
    assert str(config_file) in caught.value.message


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(Flags(home=tmp_path), env={})
    with pytest.raises(AttributeError):
        config.home = tmp_path / "x"  # type: ignore[misc]


def test_python_dash_m_and_console_script(tmp_path: Path) -> None:
    module = subprocess.run(
        [sys.executable, "-m", "webmodels", "--version"], capture_output=True, text=True
    )
    assert module.returncode == 0 and module.stdout.startswith("webmodels ")
    script = Path(sys.executable).with_name("webmodels")
    console = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert console.stdout == module.stdout
